"""`builtin:shapes3d`: random unions of 3D primitives with analytic signed distances.

Each shape is the union of 1-3 primitives (sphere, box, torus, capsule) of random size,
position and rotation, then normalised like a mesh file (bounding-box centre at the origin,
farthest point at radius 0.9), so the built-in shapes are already in the normalised frame
(recorded transform: the identity). Item i depends only on i, so builtin:shapes3d:8 is the
first 8 items of builtin:shapes3d.

Distances: each primitive's is exact; the union is their minimum, exact outside and a lower
bound of the magnitude inside where primitives overlap (signs are exact everywhere).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from inr_gon.shapes.mesh import extract_mesh, sdf_volume

from .builtin import parse_builtin, register_builtin
from .meshes import RADIUS, normalise
from .sampling import Sampling, sample_analytic

NAME, COUNT, SEED = "shapes3d", 64, 3033
SPHERE, BOX, TORUS, CAPSULE = range(4)
KINDS = ("sphere", "box", "torus", "capsule")

register_builtin(NAME, f"{COUNT} random unions of 1-3 primitives (sphere, box, torus, capsule) "
                 "with analytic signed distances, 3D (sdf); builtin:shapes3d:N for N items", "sdf")


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def shape_params(index: int) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Primitives of item `index`: (kind, center [3], sizes [3], rotation [3, 3])."""
    rng = np.random.default_rng([SEED, index])
    prims, anchor = [], rng.uniform(-0.15, 0.15, 3)
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(0, 4))
        sizes = {SPHERE: [rng.uniform(0.25, 0.45), 0, 0],
                 BOX: rng.uniform(0.12, 0.35, 3),
                 TORUS: [rng.uniform(0.25, 0.4), rng.uniform(0.07, 0.14), 0],
                 CAPSULE: [rng.uniform(0.15, 0.35), rng.uniform(0.08, 0.16), 0]}[kind]
        sizes = np.asarray(sizes, dtype=np.float64)
        bound = np.linalg.norm(sizes) if kind == BOX else sizes[0] + sizes[1]
        center = anchor + rng.uniform(-0.35, 0.35, 3) if prims else anchor
        room = RADIUS - bound  # keep the primitive inside the sphere of radius RADIUS
        norm = np.linalg.norm(center)
        center = center * (room / norm) if norm > room else center
        prims.append((kind, center, sizes, _rotation(rng)))
    return prims


def primitive_sdf(kind: int, center: np.ndarray, sizes: np.ndarray, rot: np.ndarray,
                  p: np.ndarray) -> np.ndarray:
    """Exact signed distance of one primitive at points p [N, 3] (local frame = rot^T (p - c))."""
    q = (p - center) @ rot
    if kind == SPHERE:
        return np.linalg.norm(q, axis=1) - sizes[0]
    if kind == BOX:
        d = np.abs(q) - sizes
        return np.linalg.norm(np.maximum(d, 0), axis=1) + np.minimum(d.max(axis=1), 0)
    if kind == TORUS:
        ring = np.hypot(q[:, 0], q[:, 1]) - sizes[0]
        return np.hypot(ring, q[:, 2]) - sizes[1]
    h = np.clip(q[:, 2], -sizes[0], sizes[0])  # capsule along the local z axis
    return np.linalg.norm(q - np.stack([0 * h, 0 * h, h], axis=1), axis=1) - sizes[1]


def raw_sdf(index: int, points: np.ndarray) -> np.ndarray:
    """Signed distance of the union as generated (before normalising): float64 [N]."""
    p = np.asarray(points, dtype=np.float64)
    return np.min([primitive_sdf(*prim, p) for prim in shape_params(index)], axis=0)


@lru_cache(maxsize=256)
def _frame(index: int) -> tuple[np.ndarray, float]:
    """(center, scale) normalising item `index` as meshes are (datasets/meshes.py)."""
    mesh = extract_mesh(sdf_volume(lambda p: raw_sdf(index, p).astype(np.float32), 64))
    _, center, scale = normalise(mesh)
    return center, scale


def shape_sdf(index: int, points: np.ndarray) -> np.ndarray:
    """Signed distance of item `index` in the normalised frame at points [N, 3]: float64 [N]."""
    center, scale = _frame(index)
    return scale * raw_sdf(index, np.asarray(points, dtype=np.float64) / scale + center)


def _project(index: int, p: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Move points onto the zero level set: p <- p - d grad d (finite differences)."""
    eps = 1e-6
    for _ in range(iterations):
        d = shape_sdf(index, p)
        grad = np.stack([shape_sdf(index, p + e) - d for e in np.eye(3) * eps], axis=1) / eps
        grad /= np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-12)
        p = p - d[:, None] * grad
    return p


@lru_cache(maxsize=16)
def shape_mesh(index: int, resolution: int = 128, project: bool = True):
    """The surface of item `index` as a trimesh: marching cubes, vertices projected onto the
    exact zero level set."""
    mesh = extract_mesh(sdf_volume(lambda p: shape_sdf(index, p).astype(np.float32), resolution))
    if project:
        mesh.vertices = _project(index, mesh.vertices)
    return mesh


def load_shapes3d(spec: str, s: Sampling, progress=None) -> dict:
    """The fields of the ShapeSet of builtin:shapes3d[:COUNT] (shapeset.load_shapes builds it)."""
    _, count = parse_builtin(spec)
    count = count or COUNT
    points, sdf = [], []
    for i in range(count):
        # A coarse surface to draw area-weighted samples from, then exact by projection.
        coarse = shape_mesh(i, 40, project=False)
        surface = _project(i, coarse.sample(max(4096, s.count // 4), seed=i))
        p, d = sample_analytic(lambda x, i=i: shape_sdf(i, x), surface, s, seed=SEED + i)
        points.append(p)
        sdf.append(d)
        if progress is not None:
            progress()
    return dict(
        names=[f"{NAME}/{i:04d}" for i in range(count)], points=np.stack(points), sdf=np.stack(sdf),
        centers=np.zeros((count, 3)), scales=np.ones(count), source=spec, kind="builtin",
        surface_fn=shape_mesh, sdf_fn=shape_sdf)
