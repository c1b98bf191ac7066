"""Training on image folders larger than memory.

A folder whose decoded training set (N x H x W x C float32) would take more than
`data_memory` MiB is not loaded: its files are listed, and each step decodes only its own
batch (datasets.LazyFolder), in DataLoader worker processes that run a few steps ahead.
Batches stay a pure function of (seed, step) (the same `batch_indices` and split as the
in-memory task, over all listed files), so resume and torchrun work unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inr_gon.config import Config
from inr_gon.datasets import IMAGE_EXTS, LazyFolder, find_files
from inr_gon.training import distributed
from inr_gon.training.batches import batch_indices

PREFETCH = 2  # steps each worker prepares ahead


def lazy_folder(cfg: Config, processes: int = 1) -> LazyFolder | None:
    """A LazyFolder for cfg.data when it is a folder too large for cfg.data_memory, else None.
    processes: how many processes will decode (they share the cache budget)."""
    path = Path(cfg.dataset.data)
    if cfg.dataset.data.startswith("builtin:") or not path.is_dir():
        return None
    budget = cfg.dataset.data_memory * 2**20
    # channels are not known before decoding: count 3, the most a set can have
    if len(find_files(path, IMAGE_EXTS)) * cfg.dataset.height * cfg.dataset.width * 3 * 4 <= budget:
        return None
    return LazyFolder(path.resolve(), cfg.size, cache_bytes=budget // max(processes, 1))


class StepValues(Dataset):
    """step -> values [B, H*W, C] (this rank's share) on the CPU; what the workers compute.
    Holds only what it needs (picklable; the rank is fixed in the main process)."""

    def __init__(self, task) -> None:
        self.folder, self.train_idx, self.world = task.data, task.train_idx, task.world
        self.batch_size, self.seed = task.cfg.train.batch_size, task.cfg.train.seed

    def __getitem__(self, step: int) -> Tensor:
        idx = batch_indices(step, self.batch_size, len(self.train_idx), self.seed)
        pick = self.train_idx[distributed.shard(idx, self.world)].tolist()
        images = self.folder.items(pick)
        return torch.from_numpy(images).reshape(len(pick), -1, images.shape[-1])

    def __len__(self) -> int:  # never used: the sampler names the steps
        return 0


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
        if cfg.dataset.data_workers == 0 or step >= cfg.train.steps:
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
