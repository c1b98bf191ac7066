"""The data benchmarks/superres.py scores on, and the lever harnesses train and score on: the
held-out CIFAR-10 split of a run, crops of the builtin skimage photographs, crops and centres of
the held-out Kodak photographs (the split fixed by seed 0), and a truth's input at a factor.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from imageio.v3 import imread as read_image

from inr_gon.datasets.builtin import load_builtin
from inr_gon.models.local_geometry import area_downsample
from inr_gon.models.render import box_downsample
from inr_gon.training.batches import split_indices

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CIFAR = DATA / "cifar10_train10k_images.npy"
SIDE = 32
KODAK_CROP = 96
KODAK_HELD_OUT = 3
KODAK_CENTRE = 512  # kodak512: the held-out photos' centres, tiled by a local run


def cifar_held_out(run, n: int) -> np.ndarray:
    images = np.load(str(CIFAR)).astype(np.float32) / 255.0
    _, val = split_indices(len(images), run.cfg.dataset.val_fraction, run.cfg.train.seed)
    return images[val[:n].numpy()]


def photo_crops(per_photo: int = 2, crop: int = 128, seed: int = 0) -> np.ndarray:
    """Crops at fixed random places of each builtin:skimage photograph, area-resized to 32."""
    rng, out = np.random.default_rng(seed), []
    full = load_builtin("builtin:skimage", (512, 512), None).images  # [P, 512, 512, 3]
    for img in full:
        for _ in range(per_photo):
            y, x = rng.integers(0, 512 - crop, 2)
            patch = torch.tensor(img[None, y:y + crop, x:x + crop])
            out.append(box_downsample(patch, crop // SIDE)[0].numpy())
    return np.stack(out)


def kodak_split() -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos) of the shared Kodak set, fixed by seed 0."""
    files = sorted((DATA / "photos").glob("kodim*.png"))
    order = np.random.default_rng(0).permutation(len(files))
    held = set(order[:KODAK_HELD_OUT].tolist())
    return ([f for i, f in enumerate(files) if i not in held],
            [f for i, f in enumerate(files) if i in held])


def kodak_crops(per_photo: int = 16, seed: int = 0) -> np.ndarray:
    """Crops of KODAK_CROP x KODAK_CROP at fixed random places of each held-out photograph."""
    rng, out = np.random.default_rng(seed), []
    for f in kodak_split()[1]:
        img = read_image(f).astype(np.float32) / 255.0
        for _ in range(per_photo):
            y = rng.integers(0, img.shape[0] - KODAK_CROP)
            x = rng.integers(0, img.shape[1] - KODAK_CROP)
            out.append(img[y:y + KODAK_CROP, x:x + KODAK_CROP, :3])
    return np.stack(out)


def kodak_centres(side: int = KODAK_CENTRE) -> np.ndarray:
    """The side x side centre of each held-out photograph: inputs of 128 x 128 and more, which a
    local run renders in tiles (`render --scale`), so this set scores the tiled path."""
    out = []
    for f in kodak_split()[1]:
        img = read_image(f)[..., :3].astype(np.float32) / 255.0
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        out.append(img[y:y + side, x:x + side])
    return np.stack(out)


def views(truth: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """(truth, input) at a factor: the input side / factor pixels a side, area-averaged; a
    truth whose side the factor does not divide is cropped to its centre first (32 -> 30 at
    3x, the usual SR protocol)."""
    side = truth.shape[1]
    small = math.floor(side / factor + 1e-6)  # 96 / 3.2 is 29.999...
    keep = round(small * factor)
    if keep != side:
        a = (side - keep) // 2
        truth = truth[:, a:a + keep, a:a + keep]
    return truth, area_downsample(torch.tensor(truth), (small, small)).numpy()
