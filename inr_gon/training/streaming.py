"""Training on image folders larger than memory.

A folder whose decoded training set (N x H x W x C float32) would take more than
`data_memory` MiB is not loaded: its files are listed, and each step decodes only its own
batch (datasets.LazyFolder), in DataLoader worker processes that run a few steps ahead.
Batches stay a pure function of (seed, step) (the same `batch_indices` and split as the
in-memory task, over all listed files), so resume and torchrun work unchanged.

With `crops` (photos at their own resolution) every folder goes this way, as a CropFolder:
each step draws, per item, a random crop of the full-size photo, its corner also a pure
function of (seed, step) (`crop_corners`). A folder whose full-size photos fit `data_memory`
stays decoded in this process's cache (no workers); a larger one streams as above.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inr_gon.config import Config
from inr_gon.datasets import CropFolder
from inr_gon.training import distributed
from inr_gon.training.batches import batch_indices, step_generator

PREFETCH = 2  # steps each worker prepares ahead


class StepValues(Dataset):
    """step -> values [B, H*W, C] (this rank's share) on the CPU; what the workers compute.
    Holds only what it needs (picklable; the rank is fixed in the main process)."""

    def __init__(self, task) -> None:
        self.folder, self.train_idx, self.world = task.data, task.train_idx, task.world
        self.cfg, self.batch_size, self.seed = task.cfg, task.cfg.train.batch_size, task.cfg.train.seed

    def __getitem__(self, step: int) -> Tensor:
        idx = batch_indices(step, self.batch_size, len(self.train_idx), self.seed)
        pick = self.train_idx[distributed.shard(idx, self.world)].tolist()
        if isinstance(self.folder, CropFolder):
            corners = distributed.shard(crop_corners(self.cfg, step), self.world)
            images = self.folder.crops(pick, corners.numpy())
        else:
            images = self.folder.items(pick)
        return torch.from_numpy(images).reshape(len(pick), -1, images.shape[-1])

    def __len__(self) -> int:  # never used: the sampler names the steps
        return 0


def crop_corners(cfg: Config, step: int) -> Tensor:
    """[batch, 2] crop corners in [0, 1)^2 (fractions of each photo's free range) of a step's
    global batch: a pure function of (seed, step), so --resume and every rank draw the same."""
    gen = step_generator(cfg, step, salt=5)
    return torch.rand(cfg.train.batch_size, 2, generator=gen, dtype=torch.float64)


class StreamedValues:
    """A LazyFolder's values for an ImageTask: each step's batch from DataLoader workers that
    run a few steps ahead (or decoded here with data_workers = 0)."""

    def __init__(self, task) -> None:
        self.task, self.steps = task, StepValues(task)
        self._loader, self._next = None, -1

    def at(self, step: int) -> Tensor:
        return self.task.to_device(self.values_at(step))

    def values_at(self, step: int) -> Tensor:
        """The step's values from the workers (started at this step, in order), or decoded here."""
        cfg, device = self.task.cfg, self.task.device
        if cfg.dataset.data_workers == 0 or self.task.data.in_memory or step >= cfg.train.steps:
            return self.steps[step]
        if self._loader is None or step != self._next:
            self._loader = iter(DataLoader(
                self.steps, batch_size=None, sampler=range(step, cfg.train.steps),
                num_workers=cfg.dataset.data_workers, prefetch_factor=PREFETCH,
                pin_memory=device.type == "cuda"))
        self._next = step + 1
        return next(self._loader)

    def first(self, split: Tensor, limit: int) -> Tensor:
        """values [n, H*W, C] on the device of the first `limit` items of a split (n >= 1)."""
        images = self.task.data.items(split[:limit].tolist())
        return torch.from_numpy(images).reshape(len(images), -1, images.shape[-1]).to(self.task.device)

    def evaluation(self, limit: int) -> tuple[Tensor, Tensor]:
        """(the first `limit` training values, the first `limit` held-out ones)."""
        task = self.task
        val = self.first(task.val_idx, limit) if len(task.val_idx) else None
        return self.first(task.train_idx, limit), val
