"""Image folders larger than memory: files listed once, decoded on demand, an LRU cache of
decoded (resized) images bounded in bytes.

Same decoding, resize and channel rules as `load_images`, with two differences a streamed
set cannot avoid, since it never reads every file up front:
- channels come from the first 64 readable files (sorted order): RGB if any is colour,
  else grey (later colour files are converted to grey by luma);
- an unreadable file is met during training, not before: it is skipped with one warning and
  the next readable file in sorted order takes its place, so item indices stay put.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from inr_gon.errors import InputError, warn

from .decode import UnreadableImage, decode_image_file
from .images import IMAGE_EXTS, find_files
from .resize import resize_image, to_channels

PROBE = 64  # files decoded to choose the channel count


class LazyFolder:
    """An image folder as items [H, W, C] float32 in [0, 1], decoded when asked for."""

    in_memory = False  # True: every item fits the cache, so nothing is decoded twice

    def __init__(self, folder: str | os.PathLike, size: tuple[int, int], channels: int | None = None,
                 cache_bytes: int = 256 * 2**20) -> None:
        self.root = Path(folder)
        self.files = find_files(self.root, IMAGE_EXTS)
        if not self.files:
            raise InputError(f"no images found in {folder} (looked for {' '.join(IMAGE_EXTS)})")
        self.names = [f.relative_to(self.root).as_posix() for f in self.files]
        self.size = (int(size[0]), int(size[1]))
        self.cache_bytes = cache_bytes
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cached_bytes = 0
        self.decoded = 0  # files decoded so far (a cache miss each)
        self.bad: set[int] = set()
        self.channels: int | None = None  # decoded files keep their own channels until set
        self.channels = channels or self._probe_channels()

    def __len__(self) -> int:
        return len(self.files)

    def item_bytes(self) -> int:
        return self.size[0] * self.size[1] * self.channels * 4

    def item(self, i: int) -> np.ndarray:
        """Item i: [H, W, C] float32. An unreadable file gives way to the next readable one."""
        for k in range(len(self.files)):
            j = (int(i) + k) % len(self.files)
            if j in self.cache:
                self.cache.move_to_end(j)
                return self.cache[j]
            if j in self.bad:
                continue
            img = self._decode(j)
            if img is not None:
                self._remember(j, img)
                return img
        raise InputError(f"none of the {len(self.files)} image files in {self.root} could be read")

    def items(self, indices) -> np.ndarray:
        """[B, H, W, C] float32 for item indices."""
        return np.stack([self.item(i) for i in indices])

    def summary(self) -> dict:
        h, w = self.size
        return {"source": str(self.root), "kind": "folder", "modality": "image",
                "count": len(self.files), "height": h, "width": w, "channels": self.channels,
                "analytic": False, "lazy": True}

    def _decode(self, j: int) -> np.ndarray | None:
        try:
            img = decode_image_file(self.files[j])
        except UnreadableImage as exc:
            self.bad.add(j)
            warn(f"skipped unreadable file {self.names[j]} in {self.root} ({exc}); "
                 "the next file takes its place")
            return None
        self.decoded += 1
        img = self._fit(img)
        return to_channels(img, self.channels) if self.channels else img

    def _fit(self, img: np.ndarray) -> np.ndarray:
        """A decoded file [H, W, C] -> what an item holds: resized to the training size."""
        return resize_image(img, self.size)

    def _remember(self, j: int, img: np.ndarray) -> None:
        if img.nbytes > self.cache_bytes:
            return
        self.cache[j] = img
        self.cached_bytes += img.nbytes
        while self.cached_bytes > self.cache_bytes:
            _, old = self.cache.popitem(last=False)
            self.cached_bytes -= old.nbytes

    def _probe_channels(self) -> int:
        seen = []
        for j in range(len(self.files)):
            if len(seen) >= PROBE:
                break
            img = self._decode(j)
            if img is not None:
                seen.append(img.shape[-1])
        if not seen:
            raise InputError(f"none of the first image files in {self.root} could be read")
        return 3 if 3 in seen else 1
