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


def points_per_chunk(hidden: int, batch: int, max_memory: int = DEFAULT_MAX_MEMORY) -> int:
    # About four live [batch, points, hidden] float32 tensors in a forward pass.
    return max(1024, max_memory // (16 * hidden * max(batch, 1)))


@torch.no_grad()
def decode_chunked(decoder: torch.nn.Module, coords: Tensor, z: Tensor,
                   max_memory: int = DEFAULT_MAX_MEMORY, out: Tensor | None = None,
                   clamp: bool = False) -> Tensor:
    """F(coords, z) for coords [N, d] shared by latents z [B, D] -> [B, N, C] on the CPU,
    evaluated a slice of points at a time so memory stays bounded whatever N is (clamp: to
    [0, 1], on the device). On CUDA each slice is copied out asynchronously into pinned memory
    as the next one is decoded: the GPU never waits for the host between slices."""
    b, n = z.shape[0], coords.shape[0]
    step = points_per_chunk(decoder.out.in_features, b, max_memory)
    cuda = z.device.type == "cuda"
    if out is None:
        out = torch.empty(b, n, decoder.out.out_features, pin_memory=cuda)
    async_copy = cuda and out.is_pinned() and b == 1  # [1, slice, C] of `out` is contiguous
    for i in range(0, n, step):
        c = coords[i:i + step].to(z.device)
        values = decoder(c, z).float()
        if clamp:
            values = values.clamp_(0, 1)
        # A non-blocking copy may still be reading `values` when the loop frees it: the caching
        # allocator hands its memory only to later work on the same stream, which runs after.
        out[:, i:i + step].copy_(values, non_blocking=async_copy)
    if async_copy:
        torch.cuda.current_stream(z.device).synchronize()
    return out


def render_images(decoder: torch.nn.Module, z: Tensor, height: int, width: int,
                  max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
    """Latents [B, D] -> images float32 [B, H, W, C] in [0, 1]."""
    coords = LazyGrid(height, width, z.device)
    values = decode_chunked(decoder, coords, z, max_memory, clamp=True)
    return values.reshape(z.shape[0], height, width, -1).numpy()
