"""What a run trains on: the signals, their split, batches, evaluation and previews.

`Task` is the role every task plays for the training loop. DATA is read once (`read_source`:
the items and what they determined); the task is then built with the run's final config
(`task_for`). A task turns DATA into (coords, values) batches. ImageTask
keeps every image on one shared pixel grid, so the gradient-origin step takes its shared-grid
form. Its images come from a source: an ImageSet held in memory (uploaded to the device once),
or a folder too large for `data_memory`, streamed from disk a batch at a time (streaming.py).
Under torchrun a batch is this rank's share of the global one (distributed.shard). Shapes: sdf.py.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from inr_gon.config import Config
from inr_gon.datasets import LazyFolder
from inr_gon.metrics import psnr_from_mse
from inr_gon.models.render import grid
from inr_gon.plots import preview_strip
from inr_gon.training import distributed
from inr_gon.training.batches import batch_indices, step_generator
from inr_gon.training.sdf import SdfTask
from inr_gon.training.source import Source, read_source
from inr_gon.training.streaming import StreamedValues


class Task(Protocol):
    """What the training loop asks of the data it trains on."""

    metric: str  # what evaluate() and the log show beside the loss: psnr or sdf_l1
    device: torch.device
    train_idx: Tensor  # [n_train] item indices
    val_idx: Tensor  # [n_val]

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """(coords [N, d] or [B, N, d], values [B, N, C]): this rank's share of step's batch."""

    def noise_generator(self, step: int, salt: int = 0) -> torch.Generator | None:
        """The generator of step's random draws (None on a GPU: its own)."""

    def step_metric(self, out: dict[str, Tensor]) -> float:
        """The figure the log shows beside the loss, from a step's outputs."""

    def points_option(self) -> str:
        """The option that sets the points each signal gives a step, and its value."""

    def evaluate(self, model) -> tuple[float, float | None]:
        """The metric on training items and on held-out ones (None: none held out)."""

    def preview(self, model) -> np.ndarray | None:
        """A picture of the model's reconstructions, or None."""


def task_for(cfg: Config, device: torch.device, source: Source) -> Task:
    """The task of source's data, drawing batches as cfg says."""
    return TASKS[source.facts.modality](cfg, device, source)


def make_task(cfg: Config, device: torch.device, quiet: bool = False) -> Task:
    """DATA read and its task built with cfg as it is (outside training)."""
    return task_for(cfg, device, read_source(cfg, quiet))


def image_task(cfg: Config, device: torch.device) -> ImageTask:
    """In memory, unless cfg.data is a folder too large for cfg.data_memory."""
    return task_for(cfg, device, read_source(cfg))


class MemoryValues:
    """An ImageSet's values [n, H*W, C] on the device, uploaded once."""

    def __init__(self, task: ImageTask) -> None:
        images = task.data.images
        h, w, c = images.shape[1:]
        values = torch.from_numpy(np.ascontiguousarray(images)).reshape(-1, h * w, c)
        self.task = task
        self.train = values[task.train_idx].to(task.device)  # [n, H*W, C]
        self.val = values[task.val_idx].to(task.device)

    def at(self, step: int) -> Tensor:
        return self.train[self.task.to_device(self.task.items(step))]

    def evaluation(self, limit: int) -> tuple[Tensor, Tensor]:
        """(the first `limit` training values, every held-out one)."""
        return self.train[:limit], self.val


class ImageTask:
    """Images on one shared grid, from `data`: an ImageSet (in memory) or a LazyFolder (streamed)."""

    metric = "psnr"  # what evaluate() and the log show beside the loss (SdfTask: sdf_l1)

    def __init__(self, cfg: Config, device: torch.device, source: Source) -> None:
        data = source.data
        streamed = isinstance(data, LazyFolder)
        self.cfg, self.facts, self.data, self.device = cfg, source.facts, data, device
        self.train_idx, self.val_idx = source.train_idx, source.val_idx
        self.coords = grid(*(cfg.size if streamed else data.images.shape[1:3]), device)  # [H*W, 2]
        self.world = distributed.current()
        self.values = StreamedValues(self) if streamed else MemoryValues(self)

    def step_metric(self, out: dict[str, Tensor]) -> float:
        """PSNR of the step's mean squared error."""
        return float(psnr_from_mse(float(out["mse"])))

    def points_option(self) -> str:
        return f"--points-per-signal (now {self.cfg.train.points_per_signal or 'every pixel'})"

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """(coords [N, 2] shared by the batch, values [B, N, C]); B is this rank's share."""
        return self.points(step, self.coords, self.values.at(step))

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
        return step_generator(self.cfg, step, salt) if self.device.type == "cpu" else None

    def images(self, pick: list[int]) -> np.ndarray:
        """Items of the set by index: [n, H, W, C]."""
        return self.data.items(pick) if isinstance(self.data, LazyFolder) else self.data.images[pick]

    @torch.no_grad()
    def evaluate(self, model, limit: int = 256) -> tuple[float, float | None]:
        """Mean per-image PSNR on (up to `limit`) training images and on the held-out ones
        (all of them in memory, up to `limit` when streamed)."""
        model.eval()
        train, val = self.values.evaluation(limit)
        tr = mean_psnr(model, self.coords, train)
        va = mean_psnr(model, self.coords, val) if len(self.val_idx) else None
        model.train()
        return tr, va

    def preview(self, model) -> np.ndarray:
        pick = [*self.train_idx[:4].tolist(), *self.val_idx[:2].tolist()]
        model.eval()
        strip = preview_images(model, self.images(pick), self.device)
        model.train()
        return strip


def mean_psnr(model, coords: Tensor, values: Tensor, batch: int = 64) -> float:
    """Mean per-signal PSNR of the model's reconstructions of values [n, N, C] at coords [N, d]."""
    scores = []
    for i in range(0, values.shape[0], batch):
        v = values[i:i + batch]
        pred = model.decode(coords, model.encode(coords, v)).clamp(0, 1)
        scores.append(psnr_from_mse((pred - v).pow(2).mean(dim=(1, 2))))
    return float(torch.cat(scores).mean()) if scores else math.nan


def preview_images(model, truth: np.ndarray, device: torch.device) -> np.ndarray:
    """truth [B, h, w, C] -> (truth | reconstruction | super-resolved) strip."""
    b, h, w, c = truth.shape
    f = max(1, min(4, 256 // max(h, w)))
    values = torch.as_tensor(truth, device=device).reshape(b, h * w, c)
    with torch.no_grad():
        z = model.encode(grid(h, w, device), values)
    return preview_strip(truth, model.render(z, h, w), model.render(z, f * h, f * w))


TASKS: dict[str, type] = {"image": ImageTask, "sdf": SdfTask}  # by config.json's modality
