"""A whole photograph as overlapping training-size tiles, rendered seamlessly at any size.

The decoder knows one tile: coordinates [-1, 1]^2 over a training-size crop. A photo of
H x W pixels is covered by tiles of h x w pixels whose corners are evenly spaced with at
least `overlap` pixels shared between neighbours (`TileLayout`); each tile has its own
latent (a latent grid per tile with --latent-grid). A point u of the photo (pixel units,
edges at 0 and H) lies in one or two tiles per axis; its value is the blend

    F(u) = sum_t  a_t(u_y) b_t(u_x)  F(c_t(u), z_t),   c_t(u) = 2 (u - corner_t) / (h, w) - 1,

with a, b linear cross-fades over each overlap that sum to 1 (a partition of unity), so the
picture has no seams and, with overlap 0, each pixel is exactly its own tile's decode.

`render_tiles` fills the output a strip of rows at a time, and decodes each tile's part of a
strip through `decode_chunked`: memory is the output array plus one strip, whatever the size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inr_gon.models.render import DEFAULT_MAX_MEMORY, decode_chunked

STRIP_BYTES = 64 * 2**20  # float32 output rows blended at once


def tile_starts(length: int, tile: int, overlap: int) -> np.ndarray:
    """Corners of the tiles covering `length` pixels: evenly spaced, the first at 0, the last
    at length - tile, neighbours sharing at least `overlap` pixels (one tile if it fits)."""
    if length <= tile:
        return np.zeros(1, dtype=np.int64)
    n = -(-(length - overlap) // (tile - overlap))  # ceil
    n = max(n, 2)
    return np.round(np.arange(n) * (length - tile) / (n - 1)).astype(np.int64)


def axis_weights(u: np.ndarray, starts: np.ndarray, tile: int) -> np.ndarray:
    """Blend weights [T, len(u)] of the tiles along one axis at points u (pixel units):
    1 inside a tile, linear ramps across each overlap with a neighbour, columns sum to 1."""
    w = np.zeros((len(starts), len(u)))
    for k, s in enumerate(starts):
        inside = (u >= s) & (u < s + tile) if k < len(starts) - 1 else (u >= s)
        ramp = np.ones_like(u)
        if k > 0 and starts[k - 1] + tile > s:  # fades in over the overlap with the previous
            ramp = np.minimum(ramp, (u - s) / (starts[k - 1] + tile - s))
        if k + 1 < len(starts) and s + tile > starts[k + 1]:  # and out over the next
            ramp = np.minimum(ramp, (s + tile - u) / (s + tile - starts[k + 1]))
        w[k] = np.where(inside, np.clip(ramp, 0, 1), 0)
    return w / np.maximum(w.sum(0, keepdims=True), 1e-12)


@dataclass(frozen=True)
class TileLayout:
    """Tiles of `tile` (h, w) pixels over a photo of `photo` (H, W) pixels (H >= h, W >= w;
    pad a smaller photo first); latents are stored row-major over (ys, xs)."""

    photo: tuple[int, int]
    tile: tuple[int, int]
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    @classmethod
    def cover(cls, photo: tuple[int, int], tile: tuple[int, int], overlap: int) -> TileLayout:
        ys = tile_starts(photo[0], tile[0], min(overlap, tile[0] - 1))
        xs = tile_starts(photo[1], tile[1], min(overlap, tile[1] - 1))
        return cls(tuple(photo), tuple(tile), tuple(ys.tolist()), tuple(xs.tolist()))

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def corners(self) -> list[tuple[int, int]]:
        return [(y, x) for y in self.ys for x in self.xs]


def _ranges(w: np.ndarray) -> list[tuple[int, int, int]]:
    """(tile, first, last + 1) of the nonzero run of each row of axis weights w [T, n]."""
    out = []
    for k, row in enumerate(w):
        nz = np.flatnonzero(row)
        if len(nz):
            out.append((k, int(nz[0]), int(nz[-1]) + 1))
    return out


@torch.no_grad()
def render_tiles(decoder: torch.nn.Module, layout: TileLayout, z: Tensor, height: int, width: int,
                 region: tuple[int, int] | None = None, out: np.ndarray | None = None,
                 max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
    """Tile latents z [T, D] -> the photo rendered at (height, width): [H', W', C] in [0, 1],
    float32, or written into `out` (uint8 or float32). region (H, W): the part of the layout's
    photo to render, from its top-left corner (default all of it: a padded photo's own area)."""
    (th, tw), (ph, pw) = layout.tile, region or layout.photo
    uy = (np.arange(height) + 0.5) * ph / height  # output pixel centres in photo pixels
    ux = (np.arange(width) + 0.5) * pw / width
    wy, wx = axis_weights(uy, np.array(layout.ys), th), axis_weights(ux, np.array(layout.xs), tw)
    cy = [2 * (uy - s) / th - 1 for s in layout.ys]  # tile-local coordinates, per tile row
    cx = [2 * (ux - s) / tw - 1 for s in layout.xs]
    channels = decoder.out.out_features
    if out is None:
        out = np.empty((height, width, channels), dtype=np.float32)
    rows = max(1, STRIP_BYTES // (width * channels * 4))
    cols = _ranges(wx)
    for a in range(0, height, rows):
        b = min(height, a + rows)
        strip = np.zeros((b - a, width, channels), dtype=np.float32)
        for k, r0, r1 in _ranges(wy[:, a:b]):
            r0, r1 = r0 + a, r1 + a
            for m, c0, c1 in cols:
                yy, xx = np.meshgrid(cy[k][r0:r1], cx[m][c0:c1], indexing="ij")
                coords = torch.from_numpy(np.stack([yy, xx], -1).reshape(-1, 2)).float()
                zt = z[k * len(layout.xs) + m][None]
                vals = decode_chunked(decoder, coords, zt, max_memory)[0].numpy()
                weight = (wy[k, r0:r1, None] * wx[m, None, c0:c1])[..., None]
                strip[r0 - a:r1 - a, c0:c1] += weight * vals.reshape(r1 - r0, c1 - c0, channels)
        np.clip(strip, 0, 1, out=strip)
        out[a:b] = strip * 255 + 0.5 if out.dtype == np.uint8 else strip
    return out
