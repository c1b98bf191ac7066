"""`inr-gon eval`: mean figures of a run over a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from inr_gon import oom
from inr_gon.cli.common import app, out
from inr_gon.cli.fit import check_refine
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError
from inr_gon.inference.evaluate import evaluate as run_eval
from inr_gon.limits import MAX_RESOLUTION
from inr_gon.run import load_run


@app.command("eval", epilog="Example: inr-gon eval runs/demo builtin:shapes:64 --json")
def evaluate(
    run: Path = shared("run"),
    data: str = typer.Argument(..., help="Images (folder, .npy/.npz, builtin:NAME) or meshes"),
    split: str = shared("split"),
    limit: int = shared("limit"),
    refine_steps: int = shared("refine_steps", "Also score after K latent refine steps"),
    refine_lr: float = shared("refine_lr", "Step size of the refinement steps"),
    resolution: int = shared("resolution", "Shapes: marching-cubes grid R (R^3 cells; default 128)"),
    max_memory: int = shared("max_memory", "MiB of activations per decoder call, "
                                           "whatever the number of items"),
    as_json: bool = shared("json"),
    device: str = shared("device"),
    quiet: bool = shared("quiet"),
) -> None:
    """Mean PSNR/SSIM (images) or Chamfer/IoU (shapes) of the run over DATA."""
    check_refine(refine_steps, refine_lr, "torch")
    if resolution is not None and not 2 <= resolution <= MAX_RESOLUTION:
        raise InputError(f"--resolution must be from 2 to {MAX_RESOLUTION}, got {resolution}")
    if max_memory < 1:
        raise InputError("--max-memory must be positive")
    r = load_run(run, device)
    with oom.guard(lambda what: f"eval ran out of {what}; lower --limit (now "
                   f"{limit or 'every item'}), --max-memory (now {max_memory} MiB)"
                   f"{' or --resolution' if resolution else ''}"):
        figures = run_eval(r, data, refine_steps, refine_lr, split, limit, quiet, resolution,
                           max_memory * 2**20)
    if as_json:
        out.print_json(json.dumps(figures))
        return
    table = Table("figure", "value")
    for key, value in figures.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)
