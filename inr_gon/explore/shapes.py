"""Shape (SDF) runs on the explore page: shaded previews, a slice of the signed distance field
along one axis, and a mesh of any item at a chosen resolution, all decoded through the Space
(so within --max-memory, on its model thread)."""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from inr_gon.errors import InputError
from inr_gon.explore.space import Item, Space
from inr_gon.models.render import axis as grid_axis
from inr_gon.shapes.mesh import extract_mesh, sdf_volume
from inr_gon.shapes.splat import render_mesh
from inr_gon.training.batches import split_indices
from inr_gon.training.sdf import encode_shapes
from inr_gon.training.source import shape_set

AXES = {"x": 0, "y": 1, "z": 2}
PREVIEW_RESOLUTION, PREVIEW_SIZE = 64, 192  # a gallery preview: a coarse mesh, shaded
MAX_EXPLORE_RESOLUTION = 256  # a downloaded mesh: 64 MiB of SDF volume at most


def load_gallery(space: Space, n: int = 8) -> str | None:
    """Encode the first n training and n held-out shapes into space.items; a note when the
    run's data cannot be read here."""
    cfg = space.run.cfg
    try:
        data = shape_set(cfg, quiet=True)
    except InputError as e:
        return f"no gallery: the run's training data cannot be read here ({e})"
    train, val = split_indices(len(data.names), cfg.dataset.val_fraction, cfg.train.seed)
    for split, idx in (("train", train[:n].tolist()), ("held-out", val[:n].tolist())):
        if not idx:
            continue
        z = space.work(lambda idx=idx: encode_shapes(space.run.model, data.points[idx],
                                                           data.sdf[idx], space.run.device))
        space.items += [Item(str(data.names[i]), split, z[k].cpu()) for k, i in enumerate(idx)]
    return None


def _sdf_fn(space: Space, z: torch.Tensor, what: str):
    def f(points: np.ndarray) -> np.ndarray:
        coords = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
        return space.decode(coords, z[None], what)[0, :, 0]
    return f


def mesh_of(space: Space, index: int, resolution: int):
    """The zero level set of item `index` on a resolution^3 grid (trimesh), or None."""
    if not 8 <= resolution <= MAX_EXPLORE_RESOLUTION:
        raise InputError(f"resolution must lie in 8..{MAX_EXPLORE_RESOLUTION}, got {resolution}")
    space.check_memory(f"a {resolution}^3 mesh", 3 * 4 * resolution**3)
    z = space.item(index).z
    return extract_mesh(sdf_volume(_sdf_fn(space, z, f"a {resolution}^3 mesh"), resolution))


def preview(space: Space, index: int) -> np.ndarray:
    """A shaded view of item `index` meshed at PREVIEW_RESOLUTION: [S, S, 3]."""
    return render_mesh(mesh_of(space, index, PREVIEW_RESOLUTION), PREVIEW_SIZE)


def slice_image(space: Space, index: int, axis: str, t: float, size: int) -> np.ndarray:
    """The SDF of item `index` on the plane axis = t (t in [-1, 1]), size x size pixels: blue
    inside, orange outside, contour bands every 0.05, the surface in black. [S, S, 3]."""
    if axis not in AXES:
        raise InputError(f"axis must be x, y or z, got '{axis}'")
    if not (math.isfinite(t) and -1.0 <= t <= 1.0):
        raise InputError(f"t must lie in [-1, 1], got {t}")
    a = grid_axis(size)
    u, v = torch.meshgrid(-a, a, indexing="ij")  # rows top to bottom: the upward axis decreasing
    others = [k for k in range(3) if k != AXES[axis]]
    points = torch.empty(size * size, 3)
    points[:, AXES[axis]] = t
    points[:, others[0]] = v.reshape(-1)
    points[:, others[1]] = u.reshape(-1)
    sdf = space.decode(points, space.item(index).z[None], f"a {size}x{size} slice")[0, :, 0]
    return _colour(sdf.reshape(size, size))


def _colour(sdf: np.ndarray) -> np.ndarray:
    inside = np.array([0.25, 0.45, 0.85], np.float32)
    outside = np.array([0.95, 0.6, 0.25], np.float32)
    base = np.where(sdf[..., None] < 0, inside, outside)
    fade = np.exp(-3.0 * np.abs(sdf))[..., None]  # pale far from the surface
    bands = 0.85 + 0.15 * np.cos(2 * np.pi * sdf / 0.05)[..., None]
    img = (base * (0.35 + 0.65 * fade) + 0.65 * (1 - fade)) * bands  # towards white far away
    width = 2.0 / sdf.shape[0]  # the zero crossing, one pixel wide
    return np.where(np.abs(sdf[..., None]) < width, 0.0, np.clip(img, 0, 1)).astype(np.float32)


def mesh_bytes(space: Space, index: int, resolution: int) -> bytes:
    """Item `index` as a binary PLY file at the given resolution."""
    mesh = mesh_of(space, index, resolution)
    if mesh is None:
        raise InputError(f"the SDF of item {index} does not cross zero at {resolution}^3: no surface")
    data = mesh.export(file_type="ply")
    return data.encode() if isinstance(data, str) else data


def file_stem(name: str) -> str:
    """A download's file name from an item name: letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "shape"
