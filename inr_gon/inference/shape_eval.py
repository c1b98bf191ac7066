"""`inr-gon eval` for SDF runs: reconstruct each shape of DATA from its sampled points (the
gradient-origin step), mesh it, and score it against its source surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inr_gon.datasets import Sampling, load_shapes
from inr_gon.errors import InputError
from inr_gon.inference.shape_metrics import CONVENTION, iou, surface_metrics
from inr_gon.progress import Progress
from inr_gon.shapes.mesh import extract_mesh, network_sdf, sdf_volume
from inr_gon.training.batches import split_indices
from inr_gon.training.sdf import encode_shapes

IOU_POINTS = 100_000
KEYS = ("chamfer_l1", "chamfer_l2", "normal_consistency", "iou")


def evaluate_shapes(run, data: str, quiet: bool = False, resolution: int = 128,
                    points: int = 30_000, only: list[int] | None = None, each=None) -> dict:
    """Chamfer distance, normal consistency and volumetric IoU of the run's reconstructions of
    the shapes in DATA against their source surfaces (see shape_metrics.py for the conventions);
    items whose network SDF has no surface get None and count as failed. `only`: item indices
    to score (default all); `each(i, name, mesh or None)` sees every reconstructed mesh (the
    demo saves them)."""
    if run.cfg.summary.modality != "sdf":
        raise InputError(f"{run.path} is an {run.cfg.summary.modality} run, not an SDF run")
    shapes = load_shapes(data, Sampling.from_config(run.cfg), quiet)
    pick = list(range(len(shapes.names))) if only is None else list(only)
    z = encode_shapes(run.model, shapes.points[pick], shapes.sdf[pick], run.device)
    split = {}
    if _same_data(data, run.cfg.dataset.data):  # the run's own data: say which items it trained on
        tr, va = split_indices(len(shapes.names), run.cfg.dataset.val_fraction, run.cfg.train.seed)
        split = {**{i: "train" for i in tr.tolist()}, **{i: "val" for i in va.tolist()}}
    cube = np.random.default_rng(0).uniform(-1, 1, (IOU_POINTS, 3)).astype(np.float32)
    items = []
    with Progress("evaluating", len(pick), unit="shapes", quiet=quiet, transient=True) as bar:
        for k, i in enumerate(pick):
            name = shapes.names[i]
            f = network_sdf(run.decoder, z[k].to(run.device))
            row = {"name": name, **({"split": split[i]} if i in split else {})}
            mesh = extract_mesh(sdf_volume(f, resolution))
            if mesh is None:
                row.update({k: None for k in KEYS[:3]})
            else:
                row.update(surface_metrics(mesh, shapes.surface(i), points))
            if each is not None:
                each(i, name, mesh)
            row["iou"] = iou(f(cube) < 0, shapes.true_sdf(i, cube) < 0)
            items.append(row)
            bar.update(advance=1)
    return {"modality": "sdf", "data": data, "count": len(items), "resolution": resolution,
            "points": points, "iou_points": IOU_POINTS, "convention": CONVENTION,
            "failed": sum(r["chamfer_l1"] is None for r in items),
            "mean": _means(items), **_split_means(items), "items": items}


def _means(rows: list[dict]) -> dict:
    out = {}
    for k in KEYS:
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def _split_means(items: list[dict]) -> dict:
    out = {}
    for name in ("train", "val"):
        rows = [r for r in items if r.get("split") == name]
        if rows:
            out[f"mean_{name}"] = _means(rows)
    return out


def _same_data(a: str, b: str) -> bool:
    if a.startswith("builtin:") or b.startswith("builtin:"):
        return a == b
    return Path(a).resolve() == Path(b).resolve()

