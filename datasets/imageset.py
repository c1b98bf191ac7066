"""The ImageSet container and the argument checks every loader shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from inr_gon.errors import InputError, wxh
from inr_gon.limits import MAX_PIXELS


@dataclass
class ImageSet:
    """A stack of same-size images, float32 [N, H, W, C] in [0, 1], C in {1, 3}."""

    images: np.ndarray
    names: list[str]
    source: str
    # Analytic built-ins only: the same N items at any (H, W) -> float32 [N, H, W, C]
    # (an optional third argument, indices, renders only those items). None for files.
    true_render: Callable[..., np.ndarray] | None = None
    kind: str = "other"  # "folder", "file", "array", "builtin"; "other" if built by hand

    def summary(self) -> dict:
        """JSON-able description, for config.json and `--json` output."""
        n, h, w, c = self.images.shape
        return {
            "source": self.source,
            "kind": self.kind,
            "modality": "image",
            "count": int(n),
            "height": int(h),
            "width": int(w),
            "channels": int(c),
            "analytic": self.true_render is not None,
        }


def check_size(size: tuple[int, int] | int | None) -> tuple[int, int] | None:
    """None, S or (H, W) -> None or (H, W); InputError unless positive and sane."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(v) for v in size)
        if any(int(v) != v for v in size):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"size must be an integer S or (H, W), got {size!r}") from None
    if h <= 0 or w <= 0:
        raise InputError(f"size must be positive, got {wxh(h, w)}")
    if h * w > MAX_PIXELS:
        raise InputError(f"size {wxh(h, w)} is over the {MAX_PIXELS / 1e6:g}-megapixel limit")
    return h, w


def check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit <= 0:
        raise InputError(f"limit must be a positive integer, got {limit!r}")
    return int(limit)
