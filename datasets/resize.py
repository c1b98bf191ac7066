"""The one resize policy: centre crop to the target aspect ratio, then area (box) resize.

Both steps are done exactly on the continuous pixel grid: the crop may cut through a
pixel (a 101-row image cropped to 100 rows loses half a row at each end, so the crop
stays centred), and each output pixel is the area-weighted mean of the input pixels
it covers. Computed with running sums along each axis, so it costs O(H*W*C) for any
ratio. Upscaling under the same rule is nearest-neighbour with blended boundaries.

Why it is hand-written: the libraries at hand are exact only for integer factors. torch's
interpolate(mode="area") is adaptive average pooling (bins floor(i n/m)..ceil((i+1) n/m), whole
pixels) and Pillow's BOX filter weighs whole pixels by their centres; neither crops through a
pixel. Against this module on uniform noise (2026-11): 512->64 agree exactly, but 500->64 differ
by up to 0.054 (torch) and 0.044 (Pillow), 375->64 by 0.078 and 0.081, and 100->64 by 0.31 and
0.47 (values in [0, 1]); on a smooth image 375->64, by 0.003. skimage.transform.resize with
anti_aliasing is a Gaussian prefilter, not an area mean, and downscale_local_mean takes integer
factors only.
"""

from __future__ import annotations

import numpy as np


def _area_axis(img: np.ndarray, axis: int, start: float, stop: float, n_out: int) -> np.ndarray:
    """Box-average [start, stop] of `axis` (pixel k covers [k, k+1]) into n_out bins."""
    vals = np.moveaxis(img, axis, 0).astype(np.float64, copy=False)
    n_in = vals.shape[0]
    # prefix[k] = integral of the piecewise-constant signal over [0, k]
    prefix = np.concatenate([np.zeros((1,) + vals.shape[1:]), np.cumsum(vals, axis=0)])
    edges = start + (stop - start) * np.arange(n_out + 1) / n_out
    k = np.clip(np.floor(edges).astype(np.int64), 0, n_in - 1)
    frac = (edges - k).reshape((-1,) + (1,) * (vals.ndim - 1))
    integral = prefix[k] + frac * vals[k]
    out = (integral[1:] - integral[:-1]) * (n_out / (stop - start))
    return np.moveaxis(out, 0, axis)


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W, C] (or [H, W]) float -> [h, w, C] float32 by centre crop + area resize."""
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"size (H, W) must be positive, got {(h, w)}")
    src_h, src_w = img.shape[:2]
    if (src_h, src_w) == (h, w):
        return np.array(img, dtype=np.float32)
    y0, y1, x0, x1 = 0.0, float(src_h), 0.0, float(src_w)
    if src_h * w > src_w * h:  # taller than the target: crop rows
        keep = src_w * h / w
        y0, y1 = (src_h - keep) / 2, (src_h + keep) / 2
    elif src_h * w < src_w * h:  # wider than the target: crop columns
        keep = src_h * w / h
        x0, x1 = (src_w - keep) / 2, (src_w + keep) / 2
    out = _area_axis(img, 0, y0, y1, h)
    out = _area_axis(out, 1, x0, x1, w)
    return out.astype(np.float32)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """[..., 1 or 3] -> [..., channels]: grey is repeated; colour -> grey uses the
    ITU-R 601 luma weights (those of Pillow's convert("L"))."""
    have = img.shape[-1]
    if have == channels:
        return img
    if have == 1 and channels == 3:
        return np.repeat(img, 3, axis=-1)
    if have == 3 and channels == 1:
        weights = np.array([0.299, 0.587, 0.114], dtype=img.dtype)
        return (img @ weights)[..., None]
    raise ValueError(f"cannot convert {have} channels to {channels}")
