"""`inr-gon fit`: latents of new signals by the gradient-origin step, scored per input."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from inr_gon import oom
from inr_gon.cli.common import app, note, out
from inr_gon.cli.photo import fit_whole
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError
from inr_gon.export.runtime import onnx_encoder  # the exported gradient-origin encoder
from inr_gon.fields import duration_seconds
from inr_gon.inference.fit import MAX_REFINE_LR, MAX_REFINE_STEPS, fit_images
from inr_gon.inference.inputs import load_inputs
from inr_gon.inference.latents import check_latents_path, save_latents
from inr_gon.inference.shape_eval import fit_shapes
from inr_gon.run import hold_if_inside, load_run


@app.command(epilog="Example: inr-gon fit runs/demo photo.png --refine-steps 20 --out latents.safetensors")
def fit(
    run: Path = shared("run"),
    inputs: list[str] = typer.Argument(..., help="Images or folders of images; for an SDF run, "
                                       "mesh files, folders of them, builtin:NAME or point "
                                       "clouds (.xyz, .ply/.obj without faces)"),
    refine_steps: int = shared("refine_steps", "Latent optimisation steps after the first"),
    refine_lr: float = shared("refine_lr", "Adam step size of the refine steps (shapes: "
                                           "divided by 10 halfway)"),
    time_budget: str = shared("time_budget"),
    out_file: Path = shared("out", "Save the latents (.safetensors) for `render --latents`"),
    backend: str = shared("backend", "torch | onnx (the exported encoder)"),
    whole: bool = shared("whole", "Encode each photo whole, at its own resolution, as "
                                  "tiles of the training size (--out saves the tile latents, NAME@X,Y)"),
    scale: float = shared("scale", "With --whole, a local run: encode for rendering at this "
                                   "factor, any from 1 to 16 (default its largest --observe-scales)"),
    max_memory: int = shared("max_memory", "MiB of activations per decoder call, "
                                           "whatever the number of inputs"),
    as_json: bool = shared("json"),
    device: str = shared("device"),
    quiet: bool = shared("quiet"),
) -> None:
    """Fit new signals: one gradient step from zero, then optionally K more; PSNR/SSIM of each
    (shapes: the clamped L1 of the SDF, sdf_l1)."""
    check_refine(refine_steps, refine_lr, backend)
    if max_memory < 1:
        raise InputError("--max-memory must be positive")
    if scale is not None and not whole:
        raise InputError("fit --scale applies to --whole on a local run")
    if out_file is not None:
        check_latents_path(out_file)
    # --out into the run: one writer; out of memory: one line
    with hold_if_inside(run, out_file, is_dir=False), oom.guard(
            lambda what: f"fit ran out of {what}; fit fewer INPUTS at a time (now {len(inputs)}) "
                         f"or lower --max-memory (now {max_memory} MiB)"):
        r = load_run(run, device)
        refine_steps, seconds = refine_budget(time_budget, refine_steps, r.cfg.summary.modality)
        if refine_steps:
            r.require_latent_space("--refine-steps")
        if r.cfg.summary.modality == "sdf":
            if backend != "torch":
                raise InputError("--backend onnx applies to image runs; SDF runs fit with torch")
            if whole:
                raise InputError("--whole applies to image runs")
            res = fit_shapes(r, inputs, refine_steps, refine_lr, quiet, seconds)
        else:
            if whole:
                if backend != "torch":
                    raise InputError("--whole fits with the torch backend")
                names, z, photos, summary = fit_whole(r, inputs, refine_steps, refine_lr,
                                                      quiet or as_json, scale)
                if out_file is not None:
                    save_latents(out_file, names, z, run=str(run), photos=photos)
                    note(f"{len(names)} tile latents saved to {out_file}", quiet)
                if as_json:
                    out.print_json(json.dumps(summary))
                return
            names, images = load_inputs(inputs, r.cfg.size, r.cfg.summary.channels,
                                        keep_smaller=r.cfg.net.model == "gon")
            encoder = _onnx_encoder(r) if backend == "onnx" else None
            res = fit_images(r, images, names, refine_steps, refine_lr, encoder,
                             max_memory=max_memory * 2**20)
        if out_file is not None:
            save_latents(out_file, res.names, res.z, run=str(run))
    if as_json:
        out.print_json(json.dumps(res.summary()))
    elif not quiet:
        out.print(_table(res.summary(), r.cfg.net.model))
    if out_file is not None:
        note(f"{len(res.names)} latents saved to {out_file}", quiet)


def refine_budget(time_budget: str, refine_steps: int, modality: str) -> tuple[int, float | None]:
    """(refine steps, seconds or None) of --time-budget: SDF runs only; a budget alone refines
    until it is spent (MAX_REFINE_STEPS as the cap)."""
    try:
        seconds = duration_seconds(time_budget)
    except ValueError as e:
        raise InputError(f"--time-budget: {e}") from None
    if not seconds:
        return refine_steps, None
    if modality != "sdf":
        raise InputError("--time-budget bounds the refinement of SDF runs; image runs take "
                         "--refine-steps")
    return refine_steps or MAX_REFINE_STEPS, seconds


def check_refine(refine_steps: int, refine_lr: float, backend: str) -> None:
    if not 0 <= refine_steps <= MAX_REFINE_STEPS:
        raise InputError(f"--refine-steps must lie in 0..{MAX_REFINE_STEPS}, got {refine_steps}")
    if not 0 < refine_lr <= MAX_REFINE_LR:
        raise InputError(f"--refine-lr must lie in (0, {MAX_REFINE_LR:g}], got {refine_lr}")
    if backend not in ("torch", "onnx"):
        raise InputError(f"--backend must be torch or onnx, got '{backend}'")


def _onnx_encoder(r):
    return onnx_encoder(r)


def _table(summary: dict, model: str) -> Table:
    if "sdf_l1_0" in summary["mean"]:
        return _shape_table(summary)
    k = summary["refine_steps"]
    cols = ["PSNR", "SSIM"] + ([f"PSNR +{k}", f"SSIM +{k}"] if k else [])
    keys = ["psnr_0", "ssim_0"] + ([f"psnr_{k}", f"ssim_{k}"] if k else [])
    first = "the encoder's latent" if model == "ae" else "one gradient step from z = 0"
    caption = f"PSNR, SSIM: {first}" + (f"; +{k}: after {k} latent refine steps" if k else "")
    table = Table("item", *cols, caption=caption)
    for row in summary["items"]:
        table.add_row(row["name"], *(_fmt(key, row[key]) for key in keys))
    table.add_row("mean", *(_fmt(key, summary["mean"][key]) for key in keys), style="bold")
    return table


def _shape_table(summary: dict) -> Table:
    k = summary["refine_steps"]
    keys = ["sdf_l1_0"] + ([f"sdf_l1_{k}"] if k else [])
    caption = ("clamped L1 of the SDF on each shape's points: one gradient step from z = 0"
               + (f"; +{k}: after {k} latent refine steps" if k else ""))
    table = Table("shape", "sdf L1", *([f"sdf L1 +{k}"] if k else []), caption=caption)
    for row in summary["items"]:
        table.add_row(row["name"], *(f"{row[key]:.5f}" for key in keys))
    table.add_row("mean", *(f"{summary['mean'][key]:.5f}" for key in keys), style="bold")
    return table


def _fmt(key: str, value: float) -> str:
    return f"{value:.2f} dB" if key.startswith("psnr") else f"{value:.4f}"
