"""`inr-gon demo`: train on built-in shapes, then check 4x super-resolution against the truth
and against bicubic interpolation of the same 32 px input.

The built-in shapes are drawn analytically, so a 4x render can be scored against true
high-resolution pixels of the same held-out items, not only against the training size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inr_gon.config import Config
from inr_gon.datasets import load_images
from inr_gon.io import write_json, write_png
from inr_gon.metrics import psnr
from inr_gon.plots import preview_strip, upscale_bicubic
from inr_gon.presets import PRESETS
from inr_gon.run import load_run
from inr_gon.training.batches import split_indices
from inr_gon.training.train import train

DEMO = Config.of(**PRESETS["demo"])  # the recipe and why: presets.py
DEMO_SR = Config.of(**PRESETS["demo_superres"])  # the 4x: a local super-resolution run
FACTOR = 4


def free_run_dir(base: Path) -> Path:
    """base, or base-2, base-3 ... : the demo never overwrites an earlier demo."""
    k, path = 1, base
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def mean_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(psnr(a, b)))


def run_demo(out: Path, quiet: bool = False, cfg: Config = DEMO, show: int = 8,
             sr_cfg: Config = DEMO_SR) -> dict:
    """Train the GON and, in out/superres, a local super-resolution run on the same split, then
    score held-out items at 1x (GON) and at 4x (the local run, and the GON's own render at 4x)
    against analytic truth, beside bicubic. Returns figures."""
    result = train(cfg, out, quiet=quiet)
    sr_result = train(sr_cfg, out / "superres", quiet=quiet)
    run = load_run(out)
    data = load_images(run.cfg.dataset.data, run.cfg.size)
    _, val_idx = split_indices(len(data.images), run.cfg.dataset.val_fraction, run.cfg.train.seed)
    pick = val_idx.tolist()
    h, w = run.cfg.size
    truth_hi = data.true_render(FACTOR * h, FACTOR * w, indices=pick)
    z = run.encode(data.images[pick])
    recon = run.render(z)
    gon_4x = run.render(z, (FACTOR * h, FACTOR * w))
    superres = load_run(out / "superres").upscale(data.images[pick], FACTOR)
    bicubic = upscale_bicubic(data.images[pick], FACTOR * h, FACTOR * w)  # the baseline
    figures = {
        "run": str(out), "steps": result.step, "seconds": round(result.seconds, 1),
        "superres_steps": sr_result.step, "superres_seconds": round(sr_result.seconds, 1),
        "train_psnr": round(result.train_metric, 2),
        "val_psnr": round(mean_psnr(recon, data.images[pick]), 2),
        "val_psnr_4x_vs_truth": round(mean_psnr(superres, truth_hi), 2),
        "val_psnr_4x_gon_render": round(mean_psnr(gon_4x, truth_hi), 2),
        "val_psnr_4x_bicubic": round(mean_psnr(bicubic, truth_hi), 2), "val_items": len(pick),
    }
    n = min(show, len(pick))
    write_png(out / "demo_heldout_4x.png",
              preview_strip(data.images[pick][:n], recon[:n], superres[:n], bicubic[:n]))
    write_png(out / "demo_truth_4x.png", np.concatenate(list(truth_hi[:n]), axis=0))
    write_json(out / "demo.json", figures)
    return figures
