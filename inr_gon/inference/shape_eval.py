"""`inr-gon eval` for SDF runs: reconstruct each shape of DATA from its sampled points (the
gradient-origin step), mesh it, and score it against its source surface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from inr_gon.datasets import Sampling, load_shapes
from inr_gon.errors import InputError
from inr_gon.inference.fit import FitResult
from inr_gon.inference.mesh import shape_inputs
from inr_gon.inference.shape_metrics import CONVENTION, iou, mesh_parts, surface_metrics
from inr_gon.inference.shape_refine import SDF_REFINE_LR, shape_latents
from inr_gon.progress import Progress
from inr_gon.shapes.mesh import extract_mesh, network_sdf, sdf_volume
from inr_gon.training.batches import split_indices
from inr_gon.training.sdf import ENCODE_POINTS, fixed_subset, shape_errors

__all__ = ["evaluate_shapes", "fit_shapes", "shape_latents"]  # shape_latents: its old home
IOU_POINTS = 100_000
KEYS = ("chamfer_l1", "chamfer_l2", "normal_consistency", "iou", "components")


def evaluate_shapes(run, data: str, quiet: bool = False, resolution: int = 128,
                    points: int = 30_000, only: list[int] | None = None, each=None,
                    refine_steps: int = 0, lr: float = SDF_REFINE_LR) -> dict:
    """Chamfer distance, normal consistency, volumetric IoU and connected components of the
    run's reconstructions of the shapes in DATA against their source surfaces (see
    shape_metrics.py for the conventions); items whose network SDF has no surface get None and
    count as failed. `only`: item indices to score (default all); `each(i, name, mesh or None)`
    sees every reconstructed mesh (the demo saves them). refine_steps: latents refined that
    many steps at lr (shape_latents) before meshing; each row then has the clamped
    L1 of its latent before (sdf_l1_0) and after (sdf_l1_K)."""
    run.require_shapes("shape scores")
    if resolution < 2:
        raise InputError(f"--resolution must be at least 2, got {resolution}")
    shapes = load_shapes(data, Sampling.from_config(run.cfg), quiet)
    pick = list(range(len(shapes.names))) if only is None else list(only)
    pts = torch.from_numpy(shapes.points[pick])
    sdf = torch.from_numpy(shapes.sdf[pick])[..., None]
    clamp = run.cfg.sdf.sdf_clamp
    z0, z = shape_latents(run.model, pts, sdf, clamp, refine_steps, lr, run.device)
    p, d = fixed_subset(pts, sdf, ENCODE_POINTS)
    errors = {f"sdf_l1_{k}": shape_errors(run.model, p, d, zk, clamp, run.device)
              for k, zk in {0: z0, refine_steps: z}.items()}
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
            row = {"name": name, **({"split": split[i]} if i in split else {}),
                   **{key: float(v[k]) for key, v in errors.items()}}
            mesh = extract_mesh(sdf_volume(f, resolution))
            truth = shapes.surface(i)
            if mesh is None:
                row.update({k: None for k in KEYS[:3]})
            else:
                row.update(surface_metrics(mesh, truth, points))
            row.update(mesh_parts(mesh, truth))
            if each is not None:
                each(i, name, mesh)
            row["iou"] = iou(f(cube) < 0, shapes.true_sdf(i, cube) < 0)
            items.append(row)
            bar.update(advance=1)
    return {"modality": "sdf", "data": data, "count": len(items), "resolution": resolution,
            "refine_steps": refine_steps, "points": points, "iou_points": IOU_POINTS,
            "convention": CONVENTION, "failed": sum(r["chamfer_l1"] is None for r in items),
            "components_match": sum(r["components"] == r["components_ref"] for r in items),
            "mean": _means(items), **_split_means(items), "items": items}


def fit_shapes(run, inputs: list[str], refine_steps: int = 0, lr: float = SDF_REFINE_LR,
               quiet: bool = False, seconds: float | None = None) -> FitResult:
    """`inr-gon fit` on an SDF run: latents of the shapes in inputs (mesh files, folders,
    builtin specs) after the gradient-origin step and refine_steps more; scores: the clamped
    L1 (sdf_l1) of each shape's SDF on its ENCODE_POINTS fixed points. seconds: a time budget
    for the refinement (shape_refine.refine_shapes); the steps reported are then those taken
    (by the last batch of 16 shapes)."""
    names, points, sdf, _, _ = shape_inputs(run.cfg, inputs, quiet)
    pts, sdf = torch.from_numpy(points), torch.from_numpy(sdf)[..., None]
    clamp = run.cfg.sdf.sdf_clamp
    taken: list[float] = []
    z0, z = shape_latents(run.model, pts, sdf, clamp, refine_steps, lr, run.device,
                          losses=taken, seconds=seconds)
    refine_steps = len(taken) if seconds else refine_steps
    p, d = fixed_subset(pts, sdf, ENCODE_POINTS)
    scores0 = {"sdf_l1": shape_errors(run.model, p, d, z0, clamp, run.device)}
    scores = {"sdf_l1": shape_errors(run.model, p, d, z, clamp, run.device)} if refine_steps \
        else scores0
    return FitResult(names, z0, z, scores0, scores, refine_steps)


def _means(rows: list[dict]) -> dict:
    out = {}
    for k in [*KEYS, *(k for k in rows[0] if k.startswith("sdf_l1_"))] if rows else KEYS:
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
