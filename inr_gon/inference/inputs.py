"""What the commands read as input images: files or folders resampled to a run's training size,
or a run's own first training items (regenerated or re-read, same split)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inr_gon.config import Config
from inr_gon.datasets import LazyFolder, load_image_file, load_images, resize_image, to_channels
from inr_gon.errors import InputError, warn
from inr_gon.io import unique_names
from inr_gon.training.batches import split_indices


def load_inputs(paths: list[str], size: tuple[int, int], channels: int,
                keep_smaller: bool = False) -> tuple[list[str], np.ndarray]:
    """Image files or folders -> (names, images [B, H, W, C] at the training size). Inputs of
    another size are resampled (centre crop, area resize) with a warning, except, with
    keep_smaller (a GON's observation model, Run.encode), image files all of one size no larger
    than the training size: those come back as they are, to be fitted as observed."""
    small = _common_smaller_size(paths, size) if keep_smaller else None
    if small is not None:
        names = unique_names([Path(p).stem for p in paths])
        return names, np.stack([to_channels(load_image_file(p), channels) for p in paths])
    names, images = [], []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            data = load_images(str(path), size)
            warn(f"{path}: images resampled to {size[0]}x{size[1]}, the training size")
            names += [Path(n).with_suffix("").as_posix().replace("/", "_") for n in data.names]
            images += list(data.images)
            continue
        img = load_image_file(path)
        if img.shape[:2] != tuple(size):
            warn(f"{path}: {img.shape[0]}x{img.shape[1]} resampled to {size[0]}x{size[1]}, "
                 "the training size")
            img = resize_image(img, size)
        names.append(path.stem)
        images.append(img)
    images = [to_channels(np.asarray(i, dtype=np.float32), channels) for i in images]
    return unique_names(names), np.stack(images)


def _common_smaller_size(paths: list[str], size: tuple[int, int]) -> tuple[int, int] | None:
    """The size all of `paths` share when they are files no larger than `size`, else None.
    A side under 2 pixels is an error: one pixel holds no spatial information to fit."""
    if not paths or any(Path(p).is_dir() for p in paths):
        return None
    sizes = {load_image_file(p).shape[:2] for p in paths}
    for h, w in sizes:
        if min(h, w) < 2:
            raise InputError(f"an input is {w}x{h}: fitting needs at least 2x2 pixels")
    if len(sizes) != 1:
        return None
    (h, w), = sizes
    return (h, w) if h <= size[0] and w <= size[1] and (h, w) != tuple(size) else None


def training_items(cfg: Config, n: int) -> tuple[list[str], np.ndarray]:
    """The first n training items of a run's data (regenerated or re-read, same split)."""
    if cfg.extra.get("data", {}).get("lazy"):  # a streamed folder: decode only the n items
        data = LazyFolder(cfg.dataset.data, cfg.size, cfg.summary.channels)
        train_idx, _ = split_indices(len(data), cfg.dataset.val_fraction, cfg.train.seed)
        pick = train_idx[:n].tolist()
        images = data.items(pick)
    else:
        data = load_images(cfg.dataset.data, cfg.size)
        train_idx, _ = split_indices(len(data.images), cfg.dataset.val_fraction, cfg.train.seed)
        pick = train_idx[:n].tolist()
        images = data.images[pick]
    names = [Path(data.names[i]).with_suffix("").as_posix().replace("/", "_") for i in pick]
    return unique_names(names), to_channels(images, cfg.summary.channels)
