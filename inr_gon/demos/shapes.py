"""`inr-gon demo --shapes`: train on built-in 3D shapes, mesh the held-out ones from their
sampled points (one gradient step, no encoder), and score them against the true surfaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inr_gon.config import Config
from inr_gon.datasets import Sampling, load_shapes
from inr_gon.inference.shape_eval import evaluate_shapes
from inr_gon.io import write_json, write_png
from inr_gon.plots import image_grid
from inr_gon.presets import PRESETS
from inr_gon.run import load_run
from inr_gon.shapes.mesh import export_mesh
from inr_gon.shapes.splat import render_mesh
from inr_gon.training.batches import split_indices
from inr_gon.training.train import train

DEMO_SHAPES = Config.of(**PRESETS["shapes"])  # the recipe and why: presets.py
RESOLUTION, PICTURE = 128, 192


def run_shapes_demo(out: Path, quiet: bool = False, cfg: Config = DEMO_SHAPES,
                    resolution: int = RESOLUTION) -> dict:
    """Train, mesh the held-out shapes at `resolution`, score them. Returns the figures."""
    result = train(cfg, out, quiet=quiet)
    run = load_run(out)
    shapes = load_shapes(run.cfg.dataset.data, Sampling.from_config(run.cfg), quiet=True)
    _, val_idx = split_indices(len(shapes.names), run.cfg.dataset.val_fraction, run.cfg.train.seed)
    cells = []

    def save(i: int, name: str, mesh) -> None:
        stem = out / "demo_meshes" / name.replace("/", "_")
        if mesh is not None:
            export_mesh(mesh, stem.with_suffix(".ply"), "ply")
        cells.extend([render_mesh(shapes.surface(i), PICTURE), render_mesh(mesh, PICTURE)])
        write_png(stem.with_suffix(".png"), cells[-1])

    report = evaluate_shapes(run, run.cfg.dataset.data, quiet, resolution, only=val_idx.tolist(), each=save)
    write_png(out / "demo_heldout.png", image_grid(np.stack(cells), cols=2))
    mean = report["mean"]
    figures = {
        "run": str(out), "steps": result.step, "seconds": round(result.seconds, 1),
        "train_sdf_l1": round(result.train_metric, 4), "val_sdf_l1": round(result.val_metric, 4),
        "val_items": len(val_idx), "resolution": resolution, "failed": report["failed"],
        **{f"val_{k}": None if v is None else round(v, 5) for k, v in mean.items()},
        "convention": report["convention"],
    }
    write_json(out / "demo.json", {**figures, "items": report["items"]})
    return figures
