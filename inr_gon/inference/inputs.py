"""What the commands read as input images: files, folders or arrays at a run's training size,
or a run's own first training items (regenerated or re-read, same split)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inr_gon.config import Config
from inr_gon.datasets import (
    ARRAY_EXTS,
    IMAGE_EXTS,
    CropFolder,
    ImageSet,
    LazyFolder,
    find_files,
    load_image_file,
    load_images,
    photo_size,
    resize_image,
    to_channels,
)
from inr_gon.errors import InputError, warn, wxh
from inr_gon.io import unique_names
from inr_gon.training.batches import split_indices


def load_inputs(paths: list[str], size: tuple[int, int], channels: int,
                keep_smaller: bool = False) -> tuple[list[str], np.ndarray]:
    """Image files, folders or .npy/.npz arrays -> (names, images [B, H, W, C] at the training
    size). Inputs of another size are resampled (centre crop, area resize) with a warning,
    except, with keep_smaller (a GON's observation model, Run.encode), image files all of one
    size no larger than the training size: those come back as they are, to be fitted as observed."""
    small = _common_smaller_size(paths, size) if keep_smaller else None
    if small is not None:
        names = unique_names([Path(p).stem for p in paths])
        return names, np.stack([to_channels(load_image_file(p), channels) for p in paths])
    names, images = [], []
    for p in paths:
        path = Path(p)
        if _many(path):
            data = load_at_size(str(path), size)
            names += [item_name(n) for n in data.names]
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


def load_at_size(data: str, size: tuple[int, int]) -> ImageSet:
    """A folder, array or built-in at the training size: built-ins are drawn at it; other data
    is resampled to it, with a warning, only when it is not already that size."""
    if data.startswith("builtin:"):
        return load_images(data, size)
    try:
        ds = load_images(data)  # native size first, to know whether anything is resampled
    except InputError as e:
        if "differ in size" not in str(e):  # the loader's message for a mixed-size folder
            raise
        warn(f"{data}: images of several sizes resampled to {wxh(*size)}, the training size")
        return load_images(data, size)
    if ds.images.shape[1:3] != tuple(size):
        h, w = ds.images.shape[1:3]
        warn(f"{data}: {wxh(h, w)} resampled to {wxh(*size)}, the training size")
        ds.images = np.stack([resize_image(img, size) for img in ds.images])
    return ds


def item_name(name: str) -> str:
    """An item's name in a data set ('cats/a.png', 'x/000003') -> a file stem ('cats_a')."""
    return Path(name).with_suffix("").as_posix().replace("/", "_")


def _many(path: Path) -> bool:
    """A folder or an array: an input holding several images."""
    return path.is_dir() or path.suffix.lower() in ARRAY_EXTS


def _common_smaller_size(paths: list[str], size: tuple[int, int]) -> tuple[int, int] | None:
    """The size all of `paths` share when they are files no larger than `size`, else None.
    A side under 2 pixels is an error: one pixel holds no spatial information to fit."""
    if not paths or any(_many(Path(p)) for p in paths):
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
    names = [item_name(data.names[i]) for i in pick]
    return unique_names(names), to_channels(images, cfg.summary.channels), len(train_idx)


@dataclass(frozen=True)
class ArrayImage:
    """Image `index` of a .npy/.npz stack, already read: [H, W, C] float32 in [0, 1]."""

    path: Path
    index: int
    image: np.ndarray

    def __str__(self) -> str:
        return f"{self.path}[{self.index}]"


def photo_files(paths: list[str]) -> tuple[list[str], list[Path | ArrayImage]]:
    """Image files, the images in folders, or the images of .npy/.npz arrays -> (unique names,
    sources), for whole-photo work; an array's images are named as `load_inputs` names them."""
    names, files = [], []
    for p in paths:
        path = Path(p)
        if path.suffix.lower() in ARRAY_EXTS and not path.is_dir():
            data = load_images(str(path))
            names += [item_name(n) for n in data.names]
            files += [ArrayImage(path, i, img) for i, img in enumerate(data.images)]
            continue
        found = find_files(path, IMAGE_EXTS) if path.is_dir() else [path]
        names += [f.relative_to(path).with_suffix("").as_posix().replace("/", "_")
                  if path.is_dir() else f.stem for f in found]
        files += found
    return unique_names(names), files


def photo_hw(source: Path | ArrayImage) -> tuple[int, int] | None:
    """(H, W) of a whole photo before decoding it (None when its header cannot be read)."""
    return source.image.shape[:2] if isinstance(source, ArrayImage) else photo_size(source)


def load_photo(source: Path | ArrayImage, channels: int) -> np.ndarray:
    """One photo at its own size -> float32 [H, W, C] with the run's channels."""
    image = source.image if isinstance(source, ArrayImage) else load_image_file(source)
    return to_channels(image, channels)
