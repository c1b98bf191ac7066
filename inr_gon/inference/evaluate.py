"""`inr-gon eval`: mean figures of a run over a dataset (PSNR/SSIM for images; shapes are
scored by inr_gon.shapes.mesh)."""

from __future__ import annotations

import os

import numpy as np

from inr_gon.datasets import to_channels
from inr_gon.errors import InputError
from inr_gon.inference.fit import REFINE_LR, fit_images, mean_scores
from inr_gon.inference.inputs import item_name, load_at_size
from inr_gon.inference.shape_eval import evaluate_shapes
from inr_gon.models.render import DEFAULT_MAX_MEMORY
from inr_gon.training.batches import split_indices

SPLITS = ("all", "train", "val")
SHAPE_RESOLUTION = 128  # eval's marching-cubes grid for shapes when --resolution is not given


def evaluate(run, data: str, refine_steps: int = 0, lr: float = REFINE_LR, split: str = "all",
             limit: int | None = None, quiet: bool = False, resolution: int | None = None,
             max_memory: int = DEFAULT_MAX_MEMORY) -> dict:
    """Figures of `run` over DATA: {"data", "items", "psnr", "ssim", "mse", ...} for images;
    shapes: shape_eval.evaluate_shapes, meshed at `resolution` (default 128), a shape at a time.
    max_memory: bytes of activations per decoder call (images), whatever the number of items."""
    if run.cfg.summary.modality == "sdf":
        if split != "all" or limit is not None:
            raise InputError("--split and --limit apply to image runs")
        return evaluate_shapes(run, data, quiet=quiet, resolution=resolution or SHAPE_RESOLUTION,
                               refine_steps=refine_steps, lr=lr)
    if resolution is not None:
        raise InputError("--resolution applies to SDF runs (meshes); images are scored at the "
                         "run's training size")
    names, images = load_split(run.cfg, data, split, limit)
    res = fit_images(run, images, names, refine_steps, lr, max_memory=max_memory)
    means = mean_scores(res)
    out = {"data": data, "split": split, "items": len(names), "refine_steps": refine_steps,
           "psnr": means["psnr_0"], "ssim": means["ssim_0"], "mse": means["mse_0"]}
    if refine_steps:
        out.update({f"{k}_refined": means[f"{k}_{refine_steps}"] for k in ("psnr", "ssim", "mse")})
    return out


def load_split(cfg, data: str, split: str = "all", limit: int | None = None
               ) -> tuple[list[str], np.ndarray]:
    """(names, images [B, H, W, C] at the run's size and channels). train/val: the run's own
    split, only when DATA is the run's training data."""
    if split not in SPLITS:
        raise InputError(f"--split must be one of {', '.join(SPLITS)}, got '{split}'")
    if split != "all" and _spec(data) != _spec(cfg.dataset.data):
        raise InputError(f"--split {split} needs the run's own data ({cfg.dataset.data}), got {data}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be positive, got {limit}")
    ds = load_at_size(data, cfg.size)
    idx = np.arange(len(ds.images))
    if split != "all":
        train, val = split_indices(len(idx), cfg.dataset.val_fraction, cfg.train.seed)
        idx = (train if split == "train" else val).numpy()
        if len(idx) == 0:
            raise InputError(f"the run's '{split}' split is empty")
    idx = idx[:limit] if limit else idx
    names = [item_name(ds.names[i]) for i in idx]
    return names, to_channels(ds.images[idx], cfg.summary.channels)


def _spec(data: str) -> str:
    return data if data.startswith("builtin:") else os.path.realpath(data)
