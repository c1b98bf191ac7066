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
from inr_gon.models.render import box_downsample
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


def render_scale(scale: float | None, size: tuple[int, int] | None, hw: tuple[int, int]) -> int:
    """The integer factor of a render: --scale S, or a --size that is S x the input."""
    if size is not None:
        if size[0] % hw[0] or size[1] != hw[1] * size[0] // hw[0]:
            raise InputError(f"a local run renders an integer multiple of its input: "
                             f"{size[1]}x{size[0]} is not one of {hw[1]}x{hw[0]}")
        scale = size[0] // hw[0]
    if scale is None or not math.isfinite(scale) or scale != int(scale) \
            or not 1 <= scale <= MAX_OBSERVE_SCALE:
        asked = f"--scale {scale}" if size is None else f"--size {size[1]}x{size[0]}, {scale}x"
        raise InputError(f"a local run super-resolves by an integer factor 1 to "
                         f"{MAX_OBSERVE_SCALE}, got {asked}")
    return int(scale)


def used(weights: np.ndarray, start: int, length: int) -> slice:
    """The part of a tile's output span [start, start + length) where its blend weight is not
    0, relative to the tile: only that part is decoded."""
    nz = np.flatnonzero(weights[start:start + length] > 0)
    return slice(int(nz[0]), int(nz[-1]) + 1) if len(nz) else slice(0, 0)


def tile_layout(hw: tuple[int, int]) -> TileLayout:
    """The tiles of a photo (H, W): TILE x TILE input pixels (the side itself when smaller),
    overlapping by OVERLAP."""
    return TileLayout.cover(hw, (min(TILE, hw[0]), min(TILE, hw[1])), OVERLAP)


def encoded_tiles(run, photo: np.ndarray, layout: TileLayout, scale: int, decode=None):
    """The codes of the photo's tiles over `layout`, BATCH tiles at a time: yields (first tile,
    codes [n, h, w, d]) for rendering at scale x. decode: as `upscale_photo`."""
    th, tw = layout.tile
    x = torch.as_tensor(photo, dtype=torch.float32)
    corners = layout.corners()
    for i in range(0, len(corners), BATCH):
        tiles = torch.stack([x[y:y + th, xx:xx + tw] for y, xx in corners[i:i + BATCH]])
        yield i, run.model.encode_images(tiles.to(run.device), scale, decode)


@torch.no_grad()
def encode_codes(run, photo: np.ndarray, scale: int) -> PhotoLatents:
    """photo [H, W, C] in [0, 1] -> its tiles' codes z [T, h, w, d] for rendering at scale x
    (`fit --whole` of a local run; `render_codes` renders them)."""
    layout = tile_layout(photo.shape[:2])
    z = torch.cat([z.cpu() for _, z in encoded_tiles(run, photo, layout, scale)])
    return PhotoLatents(photo.shape[:2], layout, z, scale)


@torch.no_grad()
def render_codes(run, layout: TileLayout, batches, scale: int, out: np.ndarray | None = None,
                 decode=None) -> np.ndarray:
    """Tiles' codes, as batches (first tile, codes [n, h, w, d]) over `layout`, rendered at
    scale x and blended: [S H, S W, C] (float32, or written into a uint8 `out`)."""
    (h, w), tile = layout.photo, layout.tile
    uy = (np.arange(scale * h) + 0.5) / scale  # output pixel centres in input pixels
    ux = (np.arange(scale * w) + 0.5) / scale
    wy = blend_weights(uy, list(layout.ys), tile[0], h)
    wx = blend_weights(ux, list(layout.xs), tile[1], w)
    acc = np.zeros((scale * h, scale * w, run.cfg.summary.channels), dtype=np.float32)
    corners = layout.corners()
    for i, z in batches:
        part = corners[i:i + len(z)]
        where = [(layout.ys.index(y), layout.xs.index(xx)) for y, xx in part]  # tile row, col
        groups: dict[tuple, list[int]] = {}  # tiles of one batch that use the same block
        for j, ((y, xx), (k, m)) in enumerate(zip(part, where)):
            rows = used(wy[k], scale * y, scale * tile[0])
            cols = used(wx[m], scale * xx, scale * tile[1])
            groups.setdefault((rows.start, rows.stop, cols.start, cols.stop), []).append(j)
        for (r0, r1, c0, c1), members in groups.items():
            rendered = run.model.render(z[members].to(run.device), scale * tile[0],
                                        scale * tile[1], rows=slice(r0, r1), cols=slice(c0, c1),
                                        decode=decode)
            for j, img in zip(members, rendered):
                (y, xx), (k, m) = part[j], where[j]
                ys = slice(scale * y + r0, scale * y + r1)
                xs = slice(scale * xx + c0, scale * xx + c1)
                acc[ys, xs] += (wy[k, ys, None] * wx[m, None, xs])[..., None] * img
    np.clip(acc, 0, 1, out=acc)
    if out is None:
        return acc
    out[:] = acc * 255 + 0.5 if out.dtype == np.uint8 else acc
    return out


@torch.no_grad()
def fit_codes(run, photo: np.ndarray, scale: float | None) -> tuple[PhotoLatents, float]:
    """`fit --whole` of a local run: a photo's codes for rendering at S x (default the run's
    largest observe scale), and the PSNR of that render box-averaged back to the photo's
    size: how well the render agrees with its input."""
    s = render_scale(run.model.largest_scale if scale is None else scale, None, photo.shape[:2])
    enc = encode_codes(run, photo, s)
    up = torch.from_numpy(render_codes(run, enc.layout, saved_batches(enc), s))
    return enc, photo_psnr(box_downsample(up[None], s)[0].numpy(), photo)


def stack_codes(zs: list[torch.Tensor]) -> torch.Tensor:
    """Photos' tile code grids [T_i, h_i, w_i, D] -> one [sum T_i, max h, max w, D] for a
    latents file, each smaller grid in its corner (its PhotoTiles record has its size)."""
    h, w = max(z.shape[1] for z in zs), max(z.shape[2] for z in zs)
    return torch.cat([F.pad(z, (0, 0, 0, w - z.shape[2], 0, h - z.shape[1])) for z in zs])


def saved_batches(enc: PhotoLatents):
    """The codes of `encode_codes` (or of a latents file) as `render_codes` reads them."""
    return ((i, enc.z[i:i + BATCH]) for i in range(0, len(enc.z), BATCH))


@torch.no_grad()
def upscale_photo(run, photo: np.ndarray, scale: int, out: np.ndarray | None = None,
                  decode=None) -> np.ndarray:
    """photo [H, W, C] in [0, 1] -> [S H, S W, C] (float32, or written into a uint8 `out`),
    each batch of tiles encoded and rendered in turn (memory: one batch's codes).
    decode: the run's chosen decoder, (Geometry, codes) -> values (default torch's; the
    ONNX backend's from `inr_gon.export.local.onnx_local_decoder`): the chord steps and the
    render call it, the step's linear algebra stays in torch."""
    layout = tile_layout(photo.shape[:2])
    return render_codes(run, layout, encoded_tiles(run, photo, layout, scale, decode), scale, out,
                        decode)
