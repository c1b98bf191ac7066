"""Coordinate grids and chunked decoding: any resolution in bounded memory."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

DEFAULT_MAX_MEMORY = 512 * 2**20  # bytes of activations per decoder call


def axis(n: int, device: torch.device | str = "cpu") -> Tensor:
    """Pixel centres of n pixels mapped to [-1, 1]: (2i + 1)/n - 1."""
    return (torch.arange(n, device=device, dtype=torch.float32) * 2 + 1) / n - 1


def grid(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Pixel-centre coordinates, row-major, as (y, x): [H*W, 2]."""
    ys, xs = torch.meshgrid(axis(height, device), axis(width, device), indexing="ij")
    return torch.stack([ys, xs], dim=-1).reshape(-1, 2)


class LazyGrid:
    """grid(height, width) made a slice at a time: `coords[i:j]` and `coords.shape` as for the
    tensor, without holding all [H*W, 2] (134 MB at 4096 x 4096) while rendering. Slices are
    made on `device`, so a GPU render sends no coordinates over the bus."""

    def __init__(self, height: int, width: int, device: torch.device | str = "cpu") -> None:
        self.height, self.width, self.device = height, width, device
        self.shape = (height * width, 2)

    def __getitem__(self, rows: slice) -> Tensor:
        start, stop, _ = rows.indices(self.shape[0])
        i = torch.arange(start, max(start, stop), device=self.device)
        # the same float32 arithmetic as axis(): (2k + 1) / n - 1
        ys = (i // self.width * 2 + 1).float() / self.height - 1
        xs = (i % self.width * 2 + 1).float() / self.width - 1
        return torch.stack([ys, xs], dim=-1)


def scaled_size(hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(H, W) times scale, each side rounded: the one rounding of every `--scale` and upscale."""
    return round(hw[0] * scale), round(hw[1] * scale)


def box_grid(height: int, width: int, k: int, device: torch.device | str = "cpu") -> Tensor:
    """The fine points of an observed height x width image, each pixel the box average of the
    function over its footprint: the centres of the k x k pixels of grid(k*height, k*width)
    inside each observed pixel, grouped so that pixel m owns rows m*k^2 ... (m+1)*k^2 - 1
    (observed pixels row-major, then their sub-pixels row-major): [H*W*k^2, 2] as (y, x)."""
    fine = grid(k * height, k * width, device).reshape(height, k, width, k, 2)
    return fine.permute(0, 2, 1, 3, 4).reshape(-1, 2)


def box_downsample(images: Tensor, s: int) -> Tensor:
    """Area (box) downsampling by an integer factor s: [B, H, W, C] -> [B, H/s, W/s, C]."""
    b, h, w, c = images.shape
    return images.reshape(b, h // s, s, w // s, s, c).mean((2, 4))


def grid3d(resolution: int, device: torch.device | str = "cpu") -> Tensor:
    """Cell-centre coordinates of an R^3 grid in [-1, 1]^3, index order (x, y, z): [R^3, 3]."""
    a = axis(resolution, device)
    return torch.stack(torch.meshgrid(a, a, a, indexing="ij"), dim=-1).reshape(-1, 3)


MIN_POINTS = 1024  # points per latent and decoder call: fewer leave the device idle


def points_per_chunk(hidden: int, batch: int, max_memory: int = DEFAULT_MAX_MEMORY) -> int:
    # About four live [batch, points, hidden] float32 tensors in a forward pass.
    return max(MIN_POINTS, max_memory // (16 * hidden * max(batch, 1)))


def bytes_per_point(decoder: torch.nn.Module) -> int:
    """Activation bytes of one (latent, point) pair in a SIREN's forward pass: about four live
    [hidden] float32 rows, and with a latent grid one more per modulated layer (the shifts are
    interpolated per point, [B, N, hidden] each, all alive at once)."""
    live = 4 + (len(decoder.mod_weights()) if getattr(decoder, "grid", 0) else 0)
    return 4 * live * decoder.out.in_features


def chunk_shape(per_point: int, batch: int, points: int, max_memory: int) -> tuple[int, int]:
    """(latents, points) per decoder call so that latents x points x per_point stays within
    max_memory: every latent at once over fewer points, down to MIN_POINTS (or all of them);
    past that, fewer latents at once (one at the least, which MIN_POINTS may exceed)."""
    floor = max(min(MIN_POINTS, points), 1)
    latents = max(1, min(batch, max_memory // (per_point * floor)))
    return latents, max(floor, max_memory // (per_point * latents))


@torch.no_grad()
def decode_chunked(decoder: torch.nn.Module, coords: Tensor, z: Tensor,
                   max_memory: int = DEFAULT_MAX_MEMORY, out: Tensor | None = None,
                   clamp: bool = False) -> Tensor:
    """F(coords, z) for coords [N, d] shared by latents z [B, D] -> [B, N, C] on the CPU,
    evaluated a slice of points (and, for many latents, of latents) at a time so activations
    stay within max_memory whatever N and B are (chunk_shape; clamp: to
    [0, 1], on the device). On CUDA each slice is copied out asynchronously into pinned memory
    as the next one is decoded: the GPU never waits for the host between slices."""
    b, n = z.shape[0], coords.shape[0]
    group, step = chunk_shape(bytes_per_point(decoder), b, n, max_memory)
    cuda = z.device.type == "cuda"
    if out is None:
        out = torch.empty(b, n, decoder.out.out_features, pin_memory=cuda)
    async_copy = cuda and out.is_pinned() and b == 1  # [1, slice, C] of `out` is contiguous
    for j in range(0, b, group):  # all latents at once unless max_memory says otherwise
        for i in range(0, n, step):
            c = coords[i:i + step].to(z.device)
            values = decoder(c, z[j:j + group]).float()
            if clamp:
                values = values.clamp_(0, 1)
            # A non-blocking copy may still be reading `values` when the loop frees it: the
            # caching allocator hands its memory only to later work on the same stream.
            out[j:j + group, i:i + step].copy_(values, non_blocking=async_copy)
    if async_copy:
        torch.cuda.current_stream(z.device).synchronize()
    return out


def render_images(decoder: torch.nn.Module, z: Tensor, height: int, width: int,
                  max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
    """Latents [B, D] -> images float32 [B, H, W, C] in [0, 1]."""
    coords = LazyGrid(height, width, z.device)
    values = decode_chunked(decoder, coords, z, max_memory, clamp=True)
    return values.reshape(z.shape[0], height, width, -1).numpy()
