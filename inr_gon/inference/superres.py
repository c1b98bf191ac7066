"""Super-resolution of whole photos by a `local` run (`render RUN photo.png --scale S`).

A local run's step solves one linear system per input size, shared by every input of that size
(the origin's Jacobian does not depend on the signal). A photo is therefore cut into tiles of
TILE x TILE input pixels overlapping by OVERLAP, all tiles encoded in one batched solve, each
decoded at S x, and only each tile's inside kept, cross-faded with its neighbours
(`blend_weights`): near its borders a tile's codes miss part of their context. Memory: a
batch of tiles' codes and outputs, and the output photo.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from inr_gon.errors import InputError
from inr_gon.inference.photo import PhotoLatents, photo_psnr
from inr_gon.limits import MAX_OBSERVE_SCALE
from inr_gon.models.local_geometry import area_downsample
from inr_gon.models.render import scaled_size
from inr_gon.models.tiles import TileLayout

TILE, OVERLAP = 32, 8  # input pixels
MARGIN, RAMP = 2, 4  # a tile's outer MARGIN pixels are not used; RAMP pixels blend neighbours
BATCH = 32  # tiles encoded and decoded at once


def blend_weights(u: np.ndarray, starts: list[int], tile: int, length: int) -> np.ndarray:
    """[T, len(u)] weights of the tiles along one axis at points u (input pixel units), summing
    to 1: each tile's outer MARGIN pixels get none (except at the photo's own borders), and
    neighbours cross-fade over RAMP pixels. Near its borders a tile's codes see only part of
    their context (the window mirrors the tile's edge), so only its inside is used."""
    w = np.zeros((len(starts), len(u)))
    for k, s in enumerate(starts):
        a = s + MARGIN if s > 0 else -np.inf
        b = s + tile - MARGIN if s + tile < length else np.inf
        w[k] = np.clip(np.minimum((u - a) / RAMP, (b - u) / RAMP), 0, 1)
    return w / np.maximum(w.sum(0, keepdims=True), 1e-12)


def render_size(scale: float | None, size: tuple[int, int] | None,
                hw: tuple[int, int]) -> tuple[int, int]:
    """The output (H', W') of a local run's render of an input hw (H, W): --size, or --scale S
    times the input (rounded); any factor 1 to MAX_OBSERVE_SCALE per side."""
    if size is None:
        if scale is None or not math.isfinite(scale) or not 1 <= scale <= MAX_OBSERVE_SCALE:
            raise InputError(f"a local run super-resolves by a factor 1 to {MAX_OBSERVE_SCALE}, "
                             f"got --scale {scale}")
        return scaled_size(hw, scale)
    (fy, fx), asked = (o / i for o, i in zip(size, hw)), f"--size {size[1]}x{size[0]}"
    if not (1 <= fy <= MAX_OBSERVE_SCALE and 1 <= fx <= MAX_OBSERVE_SCALE):
        raise InputError(f"a local run super-resolves by a factor 1 to {MAX_OBSERVE_SCALE} per "
                         f"side: {asked} is not that of {hw[1]}x{hw[0]}")
    if abs(fy - fx) > 0.5 / hw[0] + 0.5 / hw[1] + 1e-9:  # more than the sides' rounding
        raise InputError(f"a local run keeps the aspect ratio (its decoder is told one pixel "
                         f"size): {asked} is {fx:.3g}x the width of {hw[1]}x{hw[0]} and {fy:.3g}x "
                         "its height")
    return tuple(size)


def tile_layout(hw: tuple[int, int]) -> TileLayout:
    """The tiles of a photo (H, W): TILE x TILE input pixels (the side itself when smaller),
    overlapping by OVERLAP."""
    return TileLayout.cover(hw, (min(TILE, hw[0]), min(TILE, hw[1])), OVERLAP)


def encoded_tiles(run, photo: np.ndarray, layout: TileLayout, out_hw: tuple[int, int],
                  decode=None):
    """The codes of the photo's tiles over `layout`, BATCH tiles at a time, for a render of
    out_hw: yields (first tile, codes [n, h, w, d]). Each tile is encoded for its share of
    the output (its side times the factor, rounded). decode: as `upscale_photo`."""
    (th, tw), (h, w) = layout.tile, photo.shape[:2]
    tile_out = (round(th * out_hw[0] / h), round(tw * out_hw[1] / w))
    x = torch.as_tensor(photo, dtype=torch.float32)
    corners = layout.corners()
    for i in range(0, len(corners), BATCH):
        tiles = torch.stack([x[y:y + th, xx:xx + tw] for y, xx in corners[i:i + BATCH]])
        yield i, run.model.encode_images(tiles.to(run.device), tile_out, decode)


@torch.no_grad()
def encode_codes(run, photo: np.ndarray, scale: float) -> PhotoLatents:
    """photo [H, W, C] in [0, 1] -> its tiles' codes z [T, h, w, d] for rendering at scale x
    (`fit --whole` of a local run; `render_codes` renders them)."""
    layout = tile_layout(photo.shape[:2])
    out_hw = render_size(scale, None, photo.shape[:2])
    z = torch.cat([z.cpu() for _, z in encoded_tiles(run, photo, layout, out_hw)])
    return PhotoLatents(photo.shape[:2], layout, z, scale)


def _span(weights: np.ndarray) -> slice:
    """Where a tile's blend weights [n] are not 0: only that part of the output is decoded."""
    nz = np.flatnonzero(weights > 0)
    return slice(int(nz[0]), int(nz[-1]) + 1) if len(nz) else slice(0, 0)


@torch.no_grad()
def render_codes(run, layout: TileLayout, batches, out_hw: tuple[int, int],
                 out: np.ndarray | None = None, decode=None) -> np.ndarray:
    """Tiles' codes, as batches (first tile, codes [n, h, w, d]) over `layout`, rendered at
    out_hw (H', W') and blended: [H', W', C] (float32, or written into a uint8 `out`). Each
    tile decodes the output pixels its blend weight covers, at their centres relative to its
    corner; tiles whose blocks sit alike (every tile, at a whole factor) decode in one call."""
    (h, w), tile, (big_h, big_w) = layout.photo, layout.tile, out_hw
    uy = (np.arange(big_h) + 0.5) * h / big_h  # output pixel centres in input pixels
    ux = (np.arange(big_w) + 0.5) * w / big_w
    wy = blend_weights(uy, list(layout.ys), tile[0], h)
    wx = blend_weights(ux, list(layout.xs), tile[1], w)
    acc = np.zeros((big_h, big_w, run.cfg.summary.channels), dtype=np.float32)
    corners = layout.corners()
    for i, z in batches:
        part = corners[i:i + len(z)]
        groups: dict[tuple, list[tuple[int, slice, slice, int, int]]] = {}  # blocks alike
        for j, (y, xx) in enumerate(part):
            k, m = layout.ys.index(y), layout.xs.index(xx)  # the tile's row and column
            rows, cols = _span(wy[k]), _span(wx[m])
            if rows.start == rows.stop or cols.start == cols.stop:
                continue
            key = (rows.stop - rows.start, round(uy[rows.start] - y, 9),
                   cols.stop - cols.start, round(ux[cols.start] - xx, 9))
            groups.setdefault(key, []).append((j, rows, cols, k, m))
        for members in groups.values():
            j0, rows, cols, _, _ = members[0]
            y0, x0 = part[j0]
            ys, xs = torch.from_numpy(uy[rows] - y0), torch.from_numpy(ux[cols] - x0)
            rendered = run.model.render_points(z[[g[0] for g in members]].to(run.device), ys, xs,
                                               w / big_w, decode=decode)
            for (_, rows, cols, k, m), img in zip(members, rendered):
                acc[rows, cols] += (wy[k, rows, None] * wx[m, None, cols])[..., None] * img
    np.clip(acc, 0, 1, out=acc)
    if out is None:
        return acc
    out[:] = acc * 255 + 0.5 if out.dtype == np.uint8 else acc
    return out


@torch.no_grad()
def fit_codes(run, photo: np.ndarray, scale: float | None) -> tuple[PhotoLatents, float]:
    """`fit --whole` of a local run: a photo's codes for rendering at S x (default the run's
    largest observe scale), and the PSNR of that render area-averaged back to the photo's
    size: how well the render agrees with its input."""
    scale = run.model.largest_scale if scale is None else scale
    out_hw = render_size(scale, None, photo.shape[:2])
    enc = encode_codes(run, photo, scale)
    up = torch.from_numpy(render_codes(run, enc.layout, saved_batches(enc), out_hw))
    return enc, photo_psnr(area_downsample(up[None], photo.shape[:2])[0].numpy(), photo)


def stack_codes(zs: list[torch.Tensor]) -> torch.Tensor:
    """Photos' tile code grids [T_i, h_i, w_i, D] -> one [sum T_i, max h, max w, D] for a
    latents file, each smaller grid in its corner (its PhotoTiles record has its size)."""
    h, w = max(z.shape[1] for z in zs), max(z.shape[2] for z in zs)
    return torch.cat([F.pad(z, (0, 0, 0, w - z.shape[2], 0, h - z.shape[1])) for z in zs])


def saved_batches(enc: PhotoLatents):
    """The codes of `encode_codes` (or of a latents file) as `render_codes` reads them."""
    return ((i, enc.z[i:i + BATCH]) for i in range(0, len(enc.z), BATCH))


@torch.no_grad()
def upscale_photo(run, photo: np.ndarray, out_hw: tuple[int, int], out: np.ndarray | None = None,
                  decode=None) -> np.ndarray:
    """photo [H, W, C] in [0, 1] -> [H', W', C] (float32, or written into a uint8 `out`),
    each batch of tiles encoded and rendered in turn (memory: one batch's codes).
    decode: the run's chosen decoder, (Geometry, codes) -> values (default torch's; the
    ONNX backend's from `inr_gon.export.local.onnx_local_decoder`): the chord steps and the
    render call it, the step's linear algebra stays in torch."""
    layout = tile_layout(photo.shape[:2])
    return render_codes(run, layout, encoded_tiles(run, photo, layout, out_hw, decode), out_hw,
                        out, decode)
