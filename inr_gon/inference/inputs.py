"""What the commands read as input images: files or folders resampled to a run's training size,
or a run's own first training items (regenerated or re-read, same split)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inr_gon.config import Config
from inr_gon.datasets import (
    IMAGE_EXTS,
    CropFolder,
    LazyFolder,
    find_files,
    load_image_file,
    load_images,
    resize_image,
    to_channels,
)
from inr_gon.errors import warn, wxh
from inr_gon.io import unique_names
from inr_gon.training.batches import split_indices


def load_inputs(paths: list[str], size: tuple[int, int], channels: int) -> tuple[list[str], np.ndarray]:
    """Image files or folders -> (names, images [B, H, W, C] at the training size). Inputs of
    another size are resampled (centre crop, area resize) with a warning."""
    names, images = [], []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            data = load_images(str(path), size)
            warn(f"{path}: images resampled to {wxh(*size)}, the training size")
            names += [Path(n).with_suffix("").as_posix().replace("/", "_") for n in data.names]
            images += list(data.images)
            continue
        img = load_image_file(path)
        if img.shape[:2] != tuple(size):
            warn(f"{path}: {wxh(*img.shape[:2])} resampled to {wxh(*size)}, "
                 "the training size")
            img = resize_image(img, size)
        names.append(path.stem)
        images.append(img)
    images = [to_channels(np.asarray(i, dtype=np.float32), channels) for i in images]
    return unique_names(names), np.stack(images)


def training_items(cfg: Config, n: int) -> tuple[list[str], np.ndarray]:
    """The first n training items of a run's data (regenerated or re-read, same split)."""
    names, images, _ = first_training_items(cfg, n)
    return names, images


def first_training_items(cfg: Config, n: int) -> tuple[list[str], np.ndarray, int]:
    """(names, images [n, H, W, C], how many training items there are in all)."""
    if cfg.extra.get("data", {}).get("lazy"):  # a streamed folder: decode only the n items
        folder = CropFolder if cfg.dataset.crops else LazyFolder  # crops: the fixed centre crops
        data = folder(cfg.dataset.data, cfg.size, cfg.summary.channels)
        train_idx, _ = split_indices(len(data), cfg.dataset.val_fraction, cfg.train.seed)
        pick = train_idx[:n].tolist()
        images = data.items(pick)
    else:
        data = load_images(cfg.dataset.data, cfg.size)
        train_idx, _ = split_indices(len(data.images), cfg.dataset.val_fraction, cfg.train.seed)
        pick = train_idx[:n].tolist()
        images = data.images[pick]
    names = [Path(data.names[i]).with_suffix("").as_posix().replace("/", "_") for i in pick]
    return unique_names(names), to_channels(images, cfg.summary.channels), len(train_idx)


def photo_files(paths: list[str]) -> tuple[list[str], list[Path]]:
    """Image files, or the images in folders -> (unique names, files), for whole-photo work."""
    names, files = [], []
    for p in paths:
        path = Path(p)
        found = find_files(path, IMAGE_EXTS) if path.is_dir() else [path]
        names += [f.relative_to(path).with_suffix("").as_posix().replace("/", "_")
                  if path.is_dir() else f.stem for f in found]
        files += found
    return unique_names(names), files


def load_photo(path: Path, channels: int) -> np.ndarray:
    """One image file at its own size -> float32 [H, W, C] with the run's channels."""
    return to_channels(load_image_file(path), channels)
