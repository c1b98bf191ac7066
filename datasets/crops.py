"""Photos at their own resolution: a folder whose items are crops, not whole shrunk photos.

`CropFolder` decodes each photo at full size (a photo smaller than the crop in a side is first
scaled up, aspect kept, until the crop fits) and keeps decoded photos in the LazyFolder LRU
cache. When the whole folder fits the cache budget it is held in memory; otherwise photos are
decoded again as batches need them. A crop is given by its top-left corner as a fraction of
the free range, u in [0, 1)^2, so one draw serves photos of any size: top = floor(u (H - h + 1)).
`items` (evaluation, previews, a run's own training items) returns the fixed centre crops.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from PIL import Image

from .lazy import LazyFolder
from .resize import resize_image

_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def photo_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(H, W) of an image file as decoded (EXIF rotation applied), from its header; None if
    the header cannot be read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's decompression-bomb warning; decode checks
        try:
            with Image.open(path) as im:
                w, h = im.size
                turned = im.getexif().get(0x0112) in _TRANSPOSED
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
    return (w, h) if turned else (h, w)


def at_least(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """img [H, W, C] scaled up (aspect kept) until an (h, w) crop fits; unchanged if it does."""
    (hi, wi), (h, w) = img.shape[:2], size
    if hi >= h and wi >= w:
        return img
    s = max(h / hi, w / wi)
    return resize_image(img, (max(h, math.ceil(hi * s)), max(w, math.ceil(wi * s))))


def crop_at(img: np.ndarray, size: tuple[int, int], u: tuple[float, float]) -> np.ndarray:
    """The (h, w) crop of img [H, W, C] whose corner sits at fraction u of the free range."""
    (hi, wi), (h, w) = img.shape[:2], size
    top = min(int(u[0] * (hi - h + 1)), hi - h)
    left = min(int(u[1] * (wi - w + 1)), wi - w)
    return img[top:top + h, left:left + w]


class CropFolder(LazyFolder):
    """A folder of photos as (h, w) crops [h, w, C] float32, decoded at full resolution."""

    def __init__(self, folder: str | os.PathLike, size: tuple[int, int], channels: int | None = None,
                 cache_bytes: int = 256 * 2**20) -> None:
        super().__init__(folder, size, channels, cache_bytes)
        sizes = [photo_size(f) or self.size for f in self.files]
        # 3 channels counted before decoding tells: the most a photo can take
        self.full_bytes = sum(max(h, self.size[0]) * max(w, self.size[1]) * 3 * 4 for h, w in sizes)
        self.in_memory = self.full_bytes <= cache_bytes

    def crops(self, indices, corners: np.ndarray) -> np.ndarray:
        """[B, h, w, C] float32: item indices[i] cropped at corners[i] (fractions, [B, 2])."""
        return np.stack([crop_at(self.item(i), self.size, c) for i, c in zip(indices, corners)])

    def items(self, indices) -> np.ndarray:
        """The fixed centre crops [B, h, w, C] (evaluation is the same on every call)."""
        return self.crops(indices, np.full((len(indices), 2), 0.5))

    def summary(self) -> dict:
        return {**super().summary(), "crops": True}

    def _fit(self, img: np.ndarray) -> np.ndarray:
        return at_least(img, self.size)
