"""Training on image folders larger than memory.

A folder whose decoded training set (N x H x W x C float32) would take more than
`data_memory` MiB is not loaded: its files are listed, and each step decodes only its own
batch (datasets.LazyFolder), in DataLoader worker processes that run a few steps ahead.
Batches stay a pure function of (seed, step) (the same `batch_indices` and split as the
in-memory task, over all listed files), so resume and torchrun work unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inr_gon import distributed
from inr_gon.config import Config, DataSummary
from inr_gon.render import grid
from inr_gon.tasks import ImageTask, _mean_psnr, batch_indices, split_indices

PREFETCH = 2  # steps each worker prepares ahead


def lazy_folder(cfg: Config, processes: int = 1):
    """A LazyFolder for cfg.data when it is a folder too large for cfg.data_memory, else None.
    processes: how many processes will decode (they share the cache budget)."""
    from inr_gon.datasets import IMAGE_EXTS, LazyFolder, find_files

    path = Path(cfg.dataset.data)
    if cfg.dataset.data.startswith("builtin:") or not path.is_dir():
        return None
    budget = cfg.dataset.data_memory * 2**20
    # channels are not known before decoding: count 3, the most a set can have
    if len(find_files(path, IMAGE_EXTS)) * cfg.dataset.height * cfg.dataset.width * 3 * 4 <= budget:
        return None
    return LazyFolder(path.resolve(), cfg.size, cache_bytes=budget // max(processes, 1))


def image_task(cfg: Config, device: torch.device) -> ImageTask:
    folder = lazy_folder(cfg, cfg.dataset.data_workers + 1)
    return ImageTask(cfg, device) if folder is None else StreamingImageTask(cfg, device, folder)


class StepValues(Dataset):
    """step -> values [B, H*W, C] (this rank's share) on the CPU; what the workers compute.
    Holds only what it needs (picklable; the rank is fixed in the main process)."""

    def __init__(self, task: StreamingImageTask) -> None:
        self.folder, self.train_idx, self.world = task.data, task.train_idx, task.world
        self.batch_size, self.seed = task.cfg.train.batch_size, task.cfg.train.seed

    def __getitem__(self, step: int) -> Tensor:
        idx = batch_indices(step, self.batch_size, len(self.train_idx), self.seed)
        pick = self.train_idx[distributed.shard(idx, self.world)].tolist()
        images = self.folder.items(pick)
        return torch.from_numpy(images).reshape(len(pick), -1, images.shape[-1])

    def __len__(self) -> int:  # never used: the sampler names the steps
        return 0


class StreamingImageTask(ImageTask):
    """ImageTask whose images stay on disk until a step needs them."""

    def __init__(self, cfg: Config, device: torch.device, folder) -> None:
        self.data, self.device = folder, device
        self.cfg = cfg
        self.facts = DataSummary(modality="image", channels=folder.channels)
        self.train_idx, self.val_idx = split_indices(len(folder), cfg.dataset.val_fraction, cfg.train.seed)
        self.coords = grid(*cfg.size, device)
        self.world = distributed.current()
        self.steps = StepValues(self)
        self._loader, self._next = None, -1

    def summary(self) -> dict:
        return {**self.data.summary(), "train": len(self.train_idx), "val": len(self.val_idx)}

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        return self.points(step, self.coords, self.to_device(self.values_at(step)))

    def values_at(self, step: int) -> Tensor:
        """The step's values from the workers (started at this step, in order), or decoded here."""
        if self.cfg.dataset.data_workers == 0 or step >= self.cfg.train.steps:
            return self.steps[step]
        if self._loader is None or step != self._next:
            self._loader = iter(DataLoader(
                self.steps, batch_size=None, sampler=range(step, self.cfg.train.steps),
                num_workers=self.cfg.dataset.data_workers, prefetch_factor=PREFETCH,
                pin_memory=self.device.type == "cuda"))
        self._next = step + 1
        return next(self._loader)

    def first_values(self, split: Tensor, limit: int) -> Tensor:
        """values [n, H*W, C] on the device of the first `limit` items of a split (n >= 1)."""
        images = self.data.items(split[:limit].tolist())
        return torch.from_numpy(images).reshape(len(images), -1, images.shape[-1]).to(self.device)

    @torch.no_grad()
    def evaluate(self, model, limit: int = 256) -> tuple[float, float | None]:
        """As ImageTask.evaluate, over at most `limit` training and `limit` held-out images."""
        model.eval()
        tr = _mean_psnr(model, self.coords, self.first_values(self.train_idx, limit))
        va = _mean_psnr(model, self.coords, self.first_values(self.val_idx, limit)) \
            if len(self.val_idx) else None
        model.train()
        return tr, va

    def preview(self, model) -> np.ndarray:
        from inr_gon.train import preview_images

        pick = [*self.train_idx[:4].tolist(), *self.val_idx[:2].tolist()]
        model.eval()
        strip = preview_images(model, self.data.items(pick), self.device)
        model.train()
        return strip
