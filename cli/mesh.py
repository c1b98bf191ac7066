"""`inr-gon mesh`: SDF runs -> a mesh file and a PNG preview per shape, at any resolution."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from inr_gon import oom
from inr_gon.cli.common import app, note, out
from inr_gon.cli.fit import check_refine, refine_budget
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError
from inr_gon.inference.latents import load_latents
from inr_gon.inference.mesh import mesh_run
from inr_gon.inference.shape_refine import SDF_REFINE_LR
from inr_gon.limits import MAX_RESOLUTION
from inr_gon.run import hold_if_inside, load_run


@app.command(epilog="Example: inr-gon mesh runs/demo-shapes --resolution 256 --out meshes/")
def mesh(
    run: Path = shared("run", "Run folder of an SDF run"),
    inputs: list[str] = typer.Argument(None, help="Mesh files, folders, builtin:NAME or point "
                                       "clouds (.xyz, .ply/.obj without faces); default: the "
                                       "first training shapes"),
    resolution: int = shared("resolution", "Grid resolution R (R^3 cells)", default=256),
    out_dir: Path = shared("out", "Output folder (default RUN/meshes)"),
    fmt: str = shared("format"),
    original_frame: bool = shared("original_frame"),
    n: int = shared("count", "How many training shapes when no INPUT is given"),
    dense: bool = shared("dense"),
    refine_steps: int = shared("refine_steps", "Latent refine steps after the first "
                                               "(DeepSDF's schedule)"),
    refine_lr: float = shared("refine_lr", "Adam step size of the refine steps (divided by 10 "
                                           "halfway)", default=SDF_REFINE_LR),
    time_budget: str = shared("time_budget"),
    latents: Path = shared("latents", "Mesh saved latents (`fit --out`) instead of inputs"),
    device: str = shared("device"),
    max_memory: int = shared("max_memory"),
    quiet: bool = shared("quiet"),
) -> None:
    """Marching cubes on the network's SDF: .ply/.obj/.glb and a shaded .png per shape."""
    if not 2 <= resolution <= MAX_RESOLUTION:
        raise InputError(f"--resolution must be from 2 to {MAX_RESOLUTION}, got {resolution}")
    if n < 1 or max_memory < 1:
        raise InputError("-n and --max-memory must be positive")
    check_refine(refine_steps, refine_lr, "torch")
    r = load_run(run, device)
    refine_steps, seconds = refine_budget(time_budget, refine_steps, r.cfg.summary.modality)
    saved = load_latents(latents, r.cfg.latent_size) if latents is not None else None
    out_dir = out_dir or run / "meshes"
    with hold_if_inside(run, out_dir, is_dir=True), oom.guard(
            lambda what: f"mesh ran out of {what} at {resolution}^3; lower --max-memory "
                         f"(now {max_memory} MiB) or --resolution"):
        rows = mesh_run(r, inputs or [], out_dir, resolution, fmt, original_frame, n, dense,
                        max_memory * 2**20, quiet, refine_steps, refine_lr, saved, seconds)
    if not quiet:
        table = Table("shape", "mesh", "vertices", "faces", "components", "watertight",
                      caption="watertight: every edge on two faces (each component closed); "
                      "compare the components with the source's")
        for row in rows:
            table.add_row(row["name"], row["file"], str(row["vertices"]), str(row["faces"]),
                          str(row["components"]), "yes" if row["watertight"] else "no")
        out.print(table)
    note(f"{len(rows)} meshes at {resolution}^3 in {out_dir} (previews: *.png)", quiet)
