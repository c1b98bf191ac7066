"""What a run trains on: the signals, their split, batches, evaluation and previews.

A task turns DATA into (coords, values) batches. ImageTask keeps every image on one shared
pixel grid, so the gradient-origin step takes its shared-grid form. Under torchrun a batch is
this rank's share of the global one (distributed.shard). Image folders too large for
`data_memory` stream from disk instead (streaming.py). A task leaves the config as given and
reports what the data determined (modality, channels) as `task.facts`, a DataSummary that
`train` attaches to the run's config once.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inr_gon import distributed
from inr_gon.config import Config, DataSummary
from inr_gon.errors import InputError
from inr_gon.render import grid


def batch_indices(step: int, batch: int, n: int, seed: int) -> Tensor:
    """Items of a step: consecutive slices of one seeded permutation per epoch, a pure function
    of (seed, step) so a resumed run, or a rank of a distributed one, draws the same batch."""
    out, start = [], step * batch
    while sum(len(o) for o in out) < batch:
        epoch, pos = divmod(start, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed((seed * 7919 + epoch) % 2**64))
        take = perm[pos:pos + batch - sum(len(o) for o in out)]
        out.append(take)
        start += len(take)
    return torch.cat(out)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train, val) item indices; at least one of each when there is room."""
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 and n >= 2 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed((seed + 12345) % 2**64))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def resolved_source(data: str) -> str:
    """DATA as a run folder records it: a path made absolute, so the run loads from anywhere."""
    return data if data.startswith("builtin:") else str(Path(data).resolve())


def make_task(cfg: Config, device: torch.device, quiet: bool = False):
    from inr_gon.datasets import detect_modality

    modality = detect_modality(cfg.dataset.data)
    if modality == "image":
        from inr_gon.streaming import image_task

        return image_task(cfg, device)
    if modality == "sdf":
        from inr_gon.sdf import SdfTask

        return SdfTask(cfg, device, quiet)
    raise InputError(f"{cfg.dataset.data}: {modality} data cannot be trained by this version")


class ImageTask:
    def __init__(self, cfg: Config, device: torch.device) -> None:
        from inr_gon.datasets import load_images

        data = load_images(cfg.dataset.data, cfg.size)
        self.cfg = cfg
        self.facts = DataSummary(modality="image", channels=data.images.shape[-1])
        self.data, self.device = data, device
        self.train_idx, self.val_idx = split_indices(len(data.images),
                                                     cfg.dataset.val_fraction, cfg.train.seed)
        h, w, c = data.images.shape[1:]
        values = torch.from_numpy(np.ascontiguousarray(data.images)).reshape(-1, h * w, c)
        self.train_values = values[self.train_idx].to(device)  # [n, H*W, C]
        self.val_values = values[self.val_idx].to(device)
        self.coords = grid(h, w, device)  # [H*W, 2]
        self.world = distributed.current()

    def summary(self) -> dict:
        return {**self.data.summary(), "train": len(self.train_idx), "val": len(self.val_idx)}

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """(coords [N, 2] shared by the batch, values [B, N, C]); B is this rank's share."""
        return self.points(step, self.coords, self.train_values[self.to_device(self.items(step))])

    def items(self, step: int) -> Tensor:
        """Positions in the train split of this rank's share of step's global batch."""
        cfg = self.cfg
        idx = batch_indices(step, cfg.train.batch_size, len(self.train_idx), cfg.train.seed)
        return distributed.shard(idx, self.world)

    def points(self, step: int, coords: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        if 0 < self.cfg.train.points_per_signal < coords.shape[0]:
            # One random subset per step, shared by the batch (and by the ranks): the
            # shared-grid step still applies.
            keep = torch.randperm(coords.shape[0], generator=self.noise_generator(step, salt=1))
            keep = self.to_device(keep[:self.cfg.train.points_per_signal])
            values, coords = values[:, keep], coords[keep]
        return coords, values

    def to_device(self, x: Tensor) -> Tensor:
        """Host tensor -> device without a host sync (pinned, non-blocking) on CUDA."""
        if self.device.type != "cuda":
            return x.to(self.device)
        return x.pin_memory().to(self.device, non_blocking=True)

    def noise_generator(self, step: int, salt: int = 0) -> torch.Generator | None:
        from inr_gon.train import step_generator

        return step_generator(self.cfg, step, salt) if self.device.type == "cpu" else None

    @torch.no_grad()
    def evaluate(self, model, limit: int = 256) -> tuple[float, float | None]:
        """Mean per-image PSNR on (up to `limit`) training images and on the held-out ones."""
        model.eval()
        tr = _mean_psnr(model, self.coords, self.train_values[:limit])
        va = _mean_psnr(model, self.coords, self.val_values) if len(self.val_idx) else None
        model.train()
        return tr, va

    def preview(self, model) -> np.ndarray:
        from inr_gon.train import preview_images

        h, w, c = self.data.images.shape[1:]
        pick = [*self.train_idx[:4].tolist(), *self.val_idx[:2].tolist()]
        model.eval()
        strip = preview_images(model, self.data.images[pick], self.device)
        model.train()
        return strip


def _mean_psnr(model, coords: Tensor, values: Tensor, batch: int = 64) -> float:
    scores = []
    for i in range(0, values.shape[0], batch):
        v = values[i:i + batch]
        pred = model.decode(coords, model.encode(coords, v)).clamp(0, 1)
        mse = (pred - v).pow(2).mean(dim=(1, 2)).clamp_min(1e-12)
        scores.append(-10 * torch.log10(mse))
    return float(torch.cat(scores).mean()) if scores else math.nan
