"""DATA read once for training: its items, what they determined, and their train/val split.
Images are decoded into memory unless the folder is larger than --data-memory (or --crops):
then its files are listed and each step decodes its own batch (lazy_folder; streaming.py).

Read before the run's config is final (the data decides its modality and channels, and the
training set's size bounds the batch); the task is built from it afterwards (tasks.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from inr_gon.config import Config, DataSummary
from inr_gon.datasets import (
    IMAGE_EXTS,
    CropFolder,
    ImageSet,
    LazyFolder,
    Sampling,
    ShapeSet,
    detect_modality,
    find_files,
    load_images,
    load_shapes,
)
from inr_gon.errors import InputError
from inr_gon.training.batches import split_indices


@dataclass
class Source:
    """DATA read once: its items and what they determined."""

    data: ImageSet | LazyFolder | ShapeSet
    facts: DataSummary  # modality and channels
    path: str  # DATA as a run folder records it: a path made absolute
    pixels: int  # points of one whole signal: H*W of an image; 0 for shapes (sdf_points each)
    train_idx: Tensor  # [n_train] item indices
    val_idx: Tensor  # [n_val]

    def summary(self) -> dict:
        """What the run folder records of the data (config.json's extra.data)."""
        return {**self.data.summary(), "train": len(self.train_idx), "val": len(self.val_idx)}


def read_source(cfg: Config, quiet: bool = False) -> Source:
    """Images in memory, unless cfg.data is a folder too large for cfg.data_memory; shapes."""
    data, modality = cfg.dataset.data, detect_modality(cfg.dataset.data)
    if modality not in ("image", "sdf"):
        raise InputError(f"{data}: {modality} data cannot be trained by this version")
    folder = lazy_folder(cfg, cfg.dataset.data_workers + 1) if modality == "image" else None
    items = (load_shapes(data, Sampling.from_config(cfg), quiet) if modality == "sdf" else
             load_images(data, cfg.size) if folder is None else folder)
    if isinstance(items, ShapeSet):
        facts, count, pixels = DataSummary(modality="sdf", channels=1), len(items.names), 0
    elif isinstance(items, LazyFolder):
        facts, count, pixels = DataSummary(channels=items.channels), len(items), cfg.size[0] * cfg.size[1]
    else:
        n, h, w, c = items.images.shape
        facts, count, pixels = DataSummary(channels=c), n, h * w
    train_idx, val_idx = split_indices(count, cfg.dataset.val_fraction, cfg.train.seed)
    path = data if data.startswith("builtin:") else str(Path(data).resolve())  # loads from anywhere
    return Source(items, facts, path, pixels, train_idx, val_idx)


def shape_set(cfg: Config, quiet: bool = False) -> ShapeSet:
    return load_shapes(cfg.dataset.data, Sampling.from_config(cfg), quiet)


def lazy_folder(cfg: Config, processes: int = 1) -> LazyFolder | None:
    """A LazyFolder for cfg.data when it is a folder too large for cfg.data_memory, else None.
    processes: how many processes will decode (they share the cache budget)."""
    path = Path(cfg.dataset.data)
    budget = cfg.dataset.data_memory * 2**20
    if cfg.dataset.crops:
        if cfg.dataset.data.startswith("builtin:") or not path.is_dir():
            raise InputError(f"--crops trains on a folder of photos; {cfg.dataset.data} is not one")
        folder = CropFolder(path.resolve(), cfg.size, cache_bytes=budget)
        if not folder.in_memory:  # the decoding processes share the budget
            folder.cache_bytes = budget // max(processes, 1)
        return folder
    if cfg.dataset.data.startswith("builtin:") or not path.is_dir():
        return None
    # channels are not known before decoding: count 3, the most a set can have
    if len(find_files(path, IMAGE_EXTS)) * cfg.dataset.height * cfg.dataset.width * 3 * 4 <= budget:
        return None
    return LazyFolder(path.resolve(), cfg.size, cache_bytes=budget // max(processes, 1))
