"""Signed distance functions: the training task, and latents of shapes from their points.

Each shape has its own sampled points (datasets/sampling.py), so a batch is coords
[B, N, 3] per shape and the gradient-origin step takes its explicit (general) form; the
outer loss is DeepSDF's clamped L1 (base.outer_loss). A step draws, for each shape of the
batch, sdf_points of its pool of sdf_samples points: which shapes and which points are a
function of (seed, step), so `--resume` replays the same run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from inr_gon.config import Config
from inr_gon.models.base import clamped_l1
from inr_gon.plots import image_grid
from inr_gon.shapes.mesh import extract_mesh, network_sdf, sdf_volume
from inr_gon.shapes.splat import render_mesh
from inr_gon.training import distributed
from inr_gon.training.batches import batch_indices, split_indices, step_generator
from inr_gon.training.source import Source, shape_set

ENCODE_POINTS = 16384  # points per shape for a latent outside training (fixed subset)
PREVIEW_RES, PREVIEW_SIZE = 48, 128


def fixed_subset(points: Tensor, sdf: Tensor, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The same n of each shape's P points every time: [S, P, 3], [S, P, 1] -> [S, n, ...]."""
    if n >= points.shape[1]:
        return points, sdf
    keep = torch.randperm(points.shape[1], generator=torch.Generator().manual_seed(seed))[:n]
    return points[:, keep], sdf[:, keep]


@torch.no_grad()
def encode_shapes(model, points: np.ndarray | Tensor, sdf: np.ndarray | Tensor,
                  device: torch.device | str = "cpu", n: int = ENCODE_POINTS,
                  batch: int = 16) -> Tensor:
    """Gradient-origin latents [S, D] of shapes from points [S, P, 3] and sdf [S, P(, 1)]."""
    p = torch.as_tensor(points, dtype=torch.float32)
    d = torch.as_tensor(sdf, dtype=torch.float32).reshape(p.shape[0], p.shape[1], 1)
    p, d = fixed_subset(p, d, n)
    return torch.cat([model.encode(p[i:i + batch].to(device), d[i:i + batch].to(device)).cpu()
                      for i in range(0, p.shape[0], batch)])


@torch.no_grad()
def shape_errors(model, points: Tensor, sdf: Tensor, z: Tensor, clamp: float,
                 device: torch.device | str = "cpu", batch: int = 16) -> np.ndarray:
    """Clamped L1 of each shape's SDF under latents z [S, D] at points [S, P, 3]: [S]."""
    return torch.cat([clamped_l1(model.decode(points[i:i + batch].to(device),
                                              z[i:i + batch].to(device)),
                                 sdf[i:i + batch].to(device), clamp).cpu()
                      for i in range(0, points.shape[0], batch)]).numpy()


class SdfTask:
    metric = "sdf_l1"  # mean clamped |error| of the SDF in the normalised frame, lower is better

    def __init__(self, cfg: Config, device: torch.device, source: Source) -> None:
        data = source.data
        self.cfg, self.facts, self.data, self.device = cfg, source.facts, data, device
        self.train_idx, self.val_idx = source.train_idx, source.val_idx
        points = torch.from_numpy(data.points)  # [S, P, 3]
        sdf = torch.from_numpy(data.sdf)[..., None]  # [S, P, 1]
        self.train_points, self.train_sdf = points[self.train_idx].to(device), sdf[self.train_idx].to(device)
        self.val_points, self.val_sdf = points[self.val_idx], sdf[self.val_idx]
        self._truth: np.ndarray | None = None
        self.world = distributed.current()

    def step_metric(self, out: dict[str, Tensor]) -> float:
        """The step's clamped L1."""
        return float(out["rec"])

    def points_option(self) -> str:
        return f"--sdf-points (now {self.cfg.sdf.sdf_points})"

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """(coords [B, N, 3], values [B, N, 1]): N = sdf_points of each shape's pool; under
        torchrun B is this rank's share of the global batch (points drawn for all of it)."""
        cfg = self.cfg
        idx = batch_indices(step, cfg.train.batch_size, len(self.train_idx), cfg.train.seed)
        pool = self.train_points.shape[1]
        pick = torch.randint(pool, (len(idx), min(cfg.sdf.sdf_points, pool)),
                             generator=self.noise_generator_cpu(step, salt=1))
        share = distributed.shard(torch.arange(len(idx)), self.world)
        idx, pick = idx[share].to(self.device)[:, None], pick[share].to(self.device)
        return self.train_points[idx, pick], self.train_sdf[idx, pick]

    def noise_generator_cpu(self, step: int, salt: int = 0) -> torch.Generator:
        return step_generator(self.cfg, step, salt)

    def noise_generator(self, step: int, salt: int = 0) -> torch.Generator | None:
        return self.noise_generator_cpu(step, salt) if self.device.type == "cpu" else None

    @torch.no_grad()
    def evaluate(self, model, limit: int = 64) -> tuple[float, float | None]:
        """Mean clamped L1 on (up to `limit`) training shapes and on the held-out ones, each
        shape's latent taken from a fixed subset of its points."""
        model.eval()
        tr = self._l1(model, self.train_points[:limit], self.train_sdf[:limit])
        va = self._l1(model, self.val_points, self.val_sdf) if len(self.val_idx) else None
        model.train()
        return tr, va

    def _l1(self, model, points: Tensor, sdf: Tensor) -> float:
        if points.shape[0] == 0:
            return math.nan
        p, d = fixed_subset(points, sdf, ENCODE_POINTS)
        z = encode_shapes(model, p, d, self.device)
        return float(shape_errors(model, p, d, z, self.cfg.sdf.sdf_clamp, self.device).mean())

    def preview(self, model) -> np.ndarray:
        """Rows of (source surface | network's surface) for 4 training and 2 held-out shapes."""
        pick = [*self.train_idx[:4].tolist(), *self.val_idx[:2].tolist()]
        if self._truth is None:
            self._truth = np.stack([render_mesh(self.data.surface(i), PREVIEW_SIZE) for i in pick])
        model.eval()
        z = encode_shapes(model, self.data.points[pick], self.data.sdf[pick], self.device)
        recon = [render_mesh(extract_mesh(sdf_volume(network_sdf(model.decoder, zi.to(self.device)),
                                                     PREVIEW_RES)), PREVIEW_SIZE) for zi in z]
        model.train()
        cells = np.stack([self._truth, np.stack(recon)], axis=1).reshape(-1, *self._truth.shape[1:])
        return image_grid(cells, cols=2)


def training_shapes(cfg: Config, n: int, quiet: bool = False):
    """(names, points, sdf, centers, scales) of the first n training shapes of a run's data."""
    data = shape_set(cfg, quiet)
    train_idx, _ = split_indices(len(data.names), cfg.dataset.val_fraction, cfg.train.seed)
    pick = train_idx[:n].tolist()
    return ([data.names[i] for i in pick], data.points[pick], data.sdf[pick],
            data.centers[pick], data.scales[pick])
