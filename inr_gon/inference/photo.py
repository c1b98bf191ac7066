"""A whole photograph at its own resolution: tiled gradient-origin latents, rendered at any size.

`encode_photo` cuts the photo into training-size tiles (models/tiles.py, overlapping by a
quarter tile) and takes the gradient-origin step of every tile in batches. All tiles share the
training pixel grid, so for a GON with the first step alone that step is one affine map of the
tile's pixels (`origin_affine`, built once): z = x A + b. `render_photo` blends the tiles'
decodes at any output size in bounded memory. A photo smaller than a tile in a side is padded
(edge pixels repeated) up to it; the padding is never rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inr_gon.errors import InputError
from inr_gon.inference.fit import REFINE_LR, refine
from inr_gon.inference.latents import PhotoTiles
from inr_gon.limits import MAX_RENDER_PIXELS, MAX_RENDER_SIDE
from inr_gon.metrics import psnr_from_mse
from inr_gon.models.gon import GON
from inr_gon.models.origin import origin_affine
from inr_gon.models.render import DEFAULT_MAX_MEMORY, grid, scaled_size
from inr_gon.models.tiles import TileLayout, render_tiles

AFFINE_MAX_BYTES = 256 * 2**20  # the affine map A [h*w*C, D] is built when it is this small
MIN_SIDE = 2  # pixels per side of a photo to fit whole


@dataclass
class PhotoLatents:
    """A photo as tile latents over `layout`; `size` (H, W) is the photo's own size. A GON's:
    z [T, D], scale 0; a local run's: code grids z [T, h, w, d] for rendering at `scale` x
    (inference/superres.py)."""

    size: tuple[int, int]
    layout: TileLayout
    z: Tensor
    scale: float = 0

    def record(self, name: str, first: int) -> PhotoTiles:
        """Where its tiles go in a latents file whose latent `first` is its first tile."""
        lay = self.layout
        return PhotoTiles(name, self.size, lay.photo, lay.tile, lay.ys, lay.xs, first, self.scale)

    @classmethod
    def of(cls, rec: PhotoTiles, z: Tensor) -> PhotoLatents:
        """The photo `rec` describes, from all the latents z [T, ...] of its file (code grids
        of tiles smaller than the file's are its corner)."""
        layout = TileLayout(rec.padded, rec.tile, rec.ys, rec.xs)
        mine = z[rec.first:rec.first + rec.count]
        if rec.scale:
            mine = mine[:, :rec.tile[0], :rec.tile[1]]
        return cls(rec.size, layout, mine, rec.scale)


def check_photo(photo: np.ndarray, name: str) -> None:
    h, w = photo.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise InputError(f"{name} is {w}x{h}: a whole-photo fit needs at least "
                         f"{MIN_SIDE}x{MIN_SIDE} pixels")


def output_size(photo: tuple[int, int], scale: float | None = None,
                size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(H', W') of a render of a photo (H, W): `size`, else the photo's size times `scale`
    (aspect kept), else its own size. InputError naming the limit it would exceed."""
    if size is not None and scale is not None:
        raise InputError("give --size or --scale, not both")
    if scale is not None:
        if not math.isfinite(scale) or scale <= 0:
            raise InputError(f"--scale must be a positive number, got {scale:g}")
        size = scaled_size(photo, scale)
    h, w = size or photo
    shown = f"--scale {scale:g} makes {w}x{h}" if scale is not None else f"{w}x{h}"
    if h < 1 or w < 1:
        raise InputError(f"{shown}: a render needs at least 1x1 pixels")
    if h > MAX_RENDER_SIDE or w > MAX_RENDER_SIDE:
        raise InputError(f"{shown}, above the render limit of {MAX_RENDER_SIDE} pixels per side")
    if h * w > MAX_RENDER_PIXELS:
        raise InputError(f"{shown}, above the render memory budget of "
                         f"{MAX_RENDER_PIXELS / 2**20:g} megapixels")
    return h, w


def tile_values(photo: np.ndarray, layout: TileLayout, first: int, count: int,
                device: torch.device) -> Tensor:
    """Tiles first .. first+count-1 of a (padded) photo [H, W, C] -> values [n, h*w, C]."""
    th, tw = layout.tile
    tiles = [photo[y:y + th, x:x + tw] for y, x in layout.corners()[first:first + count]]
    return torch.from_numpy(np.stack(tiles)).reshape(len(tiles), th * tw, -1).to(device)


def tile_encoder(run, coords: Tensor):
    """values [n, N, C] -> latents [n, D]: the affine map of the first step when it applies."""
    model, cfg = run.model, run.cfg
    bytes_a = coords.shape[0] * cfg.summary.channels * cfg.latent_size * 4
    if (isinstance(model, GON) and not cfg.net.variational and cfg.net.inner_steps == 1
            and bytes_a <= AFFINE_MAX_BYTES):
        a, b = origin_affine(model.decoder, model.origin, coords)
        return lambda v: v.flatten(1) @ a + b
    return lambda v: model.encode(coords, v)


def encode_photo(run, photo: np.ndarray, refine_steps: int = 0, lr: float = REFINE_LR,
                 overlap: int | None = None, batch: int = 256) -> PhotoLatents:
    """photo [H, W, C] (any size >= 2x2, the run's channels) -> its tile latents."""
    run.decoder  # noqa: B018  (InputError for a run without a SIREN decoder)
    th, tw = run.cfg.size
    h, w = photo.shape[:2]
    pad = ((0, max(th - h, 0)), (0, max(tw - w, 0)), (0, 0))
    padded = np.pad(photo, pad, mode="edge") if any(p[1] for p in pad) else photo
    layout = TileLayout.cover(padded.shape[:2], (th, tw), min(th, tw) // 4 if overlap is None
                              else overlap)
    coords = grid(th, tw, run.device)
    encode = tile_encoder(run, coords)
    zs = []
    for i in range(0, len(layout), batch):
        v = tile_values(padded, layout, i, batch, run.device)
        with torch.no_grad():
            z = encode(v)
        zs.append(refine(run.model, coords, v, z, refine_steps, lr) if refine_steps else z)
    return PhotoLatents((h, w), layout, torch.cat(zs))


def render_photo(run, enc: PhotoLatents, size: tuple[int, int] | None = None,
                 out: np.ndarray | None = None, max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
    """The photo rendered at size (H', W') (default its own): [H', W', C] float32 in [0, 1],
    or written into `out` (uint8 or float32)."""
    h, w = output_size(enc.size, size=size)
    return render_tiles(run.decoder, enc.layout, enc.z.to(run.device), h, w, enc.size, out,
                        max_memory)


def photo_psnr(pred: np.ndarray, truth: np.ndarray, rows: int = 256) -> float:
    """PSNR of a whole photo [H, W, C] in [0, 1], a block of rows at a time (no full-size
    float64 temporaries)."""
    err = sum(float(np.square(pred[r:r + rows] - truth[r:r + rows], dtype=np.float64).sum())
              for r in range(0, truth.shape[0], rows))
    return float(psnr_from_mse(err / truth.size))
