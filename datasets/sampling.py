"""Training points of a shape, DeepSDF style: near the surface at several noise scales, plus
a share uniform in the cube, each with its signed distance (normalised frame, < 0 inside).

Near-surface points are surface samples (area-weighted) moved by isotropic Gaussian noise,
one equal group per scale; all points are clipped to [-1, 1]^3 before their distance is
computed, so every stored value is the true distance of its stored point.

Why far more uniform points than DeepSDF (0.8 of them, not ~0.1): a GON latent is the
gradient of the inner loss, a sum over points of (prediction - target); near-surface
targets are ~0, so a latent drawn mostly from them carries little of the shape, and every
shape decoded to the same blob. On builtin:shapes3d:32 (600 steps, 3 x 128, w0 10, first 8
training shapes meshed at 64^3) IoU went 0.39 -> 0.67 -> 0.81 for uniform shares 0.1, 0.5,
0.8, and to 0.83 with the wider noise scales (0.01, 0.05, 0.15) kept as the default.
A latent grid solved by Gauss-Newton (the mesh folders' default) is the opposite case: each
cell's least-squares fit sees its own points, and the thin parts want them near the surface.
On the 13 shared meshes (4,000 steps) training IoU went 0.917 -> 0.938 -> 0.950 for shares 0.8,
0.5, 0.2, so mesh folders train with 0.2 (presets.FOLDER_DEFAULTS; docs/shapes.md).

Why exact distances far from the surface, not truncated at the loss's clamp (which would make
the closest-point queries 2-4x cheaper, benchmarks/sdf.py): the latent sees the raw targets.
`inr-gon demo --shapes` with every stored distance clipped to +-0.1 gave held-out IoU 0.57
and Chamfer-L1 0.088, against 0.74 and 0.047 with exact ones (one run each, same seed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .signed_distance import is_closed_body, signed_distance

SAMPLER_VERSION = 1  # bump when the sampling changes, so old cache entries are not reused


@dataclass(frozen=True)
class Sampling:
    count: int = 100_000  # points per shape
    noise: tuple[float, ...] = (0.01, 0.05, 0.15)  # std of each near-surface group
    uniform: float = 0.8  # share of points uniform in the cube

    @classmethod
    def from_config(cls, cfg) -> Sampling:
        noise = tuple(float(x) for x in cfg.sdf.sdf_noise.split(","))  # "a,b,c": one group each
        return cls(cfg.sdf.sdf_samples, noise, cfg.sdf.sdf_uniform)

    def key(self) -> str:
        return json.dumps({**asdict(self), "version": SAMPLER_VERSION}, sort_keys=True)

    def groups(self) -> tuple[int, list[int]]:
        """(uniform count, near-surface count per noise scale), summing to count."""
        n_uniform = int(round(self.count * self.uniform))
        near = self.count - n_uniform
        per = [near // len(self.noise)] * len(self.noise)
        per[0] += near - sum(per)
        return n_uniform, per


def sample_points(surface: np.ndarray, s: Sampling, rng: np.random.Generator) -> np.ndarray:
    """Surface samples [M >= near count, 3] -> training points [count, 3] in [-1, 1]^3."""
    n_uniform, per = s.groups()
    parts, start = [], 0
    for sigma, n in zip(s.noise, per):
        chunk = surface[start:start + n]
        parts.append(chunk + rng.normal(0.0, sigma, chunk.shape))
        start += n
    parts.append(rng.uniform(-1.0, 1.0, (n_uniform, 3)))
    return np.clip(np.concatenate(parts), -1.0, 1.0)


def sample_mesh(mesh, s: Sampling, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised trimesh -> (points float32 [count, 3], sdf float32 [count])."""
    import trimesh


    rng = np.random.default_rng(seed)
    near = s.count - s.groups()[0]
    surface = trimesh.sample.sample_surface(mesh, near, seed=rng)[0]
    points = sample_points(surface, s, rng)
    sdf = signed_distance(mesh.vertices, mesh.faces, points, closed=is_closed_body(mesh))
    return points.astype(np.float32), sdf


def sample_analytic(sdf: Callable[[np.ndarray], np.ndarray], surface: np.ndarray, s: Sampling,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """As sample_mesh for a shape given by an analytic sdf and surface points [M, 3]."""
    rng = np.random.default_rng(seed)
    near = s.count - s.groups()[0]
    pick = rng.choice(len(surface), near, replace=len(surface) < near)
    points = sample_points(surface[pick], s, rng)
    return points.astype(np.float32), sdf(points).astype(np.float32)
