"""`inr-gon render`: latents by the gradient-origin step, decoded on any grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from inr_gon.cli.common import app, note, out, parse_size
from inr_gon.errors import InputError
from inr_gon.io import write_png
from inr_gon.render import image_grid

Opt = typer.Option
GRID_MAX_PIXELS = 64 * 2**20


@app.command()
def render(
    run: Path = typer.Argument(..., help="Run folder"),
    inputs: list[str] = typer.Argument(None, help="Images or folders (default: training items)"),
    size: str = Opt(None, "--size", help="Output resolution S or HxW (default: training size)"),
    out_dir: Path = Opt(None, "--out", help="Output folder (default RUN/renders)"),
    backend: str = Opt("torch", "--backend", help="torch | onnx (RUN/decoder.onnx, from `inr-gon export`)"),
    tensorrt: bool = Opt(False, "--tensorrt", help="With --backend onnx on CUDA: TensorRT first"),
    latents: Path = Opt(None, "--latents", help="Render saved latents (from `inr-gon fit`)"),
    n: int = Opt(8, "-n", "--count", help="How many training items when no INPUT is given"),
    device: str = Opt("auto", "--device"),
    max_memory: int = Opt(512, "--max-memory", help="MiB of activations per decoder call"),
    quiet: bool = Opt(False, "--quiet"),
) -> None:
    """Render inputs (or the first training items) at any resolution; PNG per item + grid."""
    from inr_gon.run import load_run

    if backend not in ("torch", "onnx"):
        raise InputError(f"--backend must be torch or onnx, got '{backend}'")
    if n < 1 or max_memory < 1:
        raise InputError("-n and --max-memory must be positive")
    r = load_run(run, device)
    r.require_images()  # before the training data is looked for as images
    hw = parse_size(size) or r.cfg.size
    decode = _decoder(r, backend, tensorrt, quiet)  # before encoding: a missing file fails fast
    names, z = item_latents(r, inputs or [], latents, n)
    out_dir = out_dir or run / "renders"
    tiles = []
    for name, zi in zip(names, z):
        img = decode(zi[None], hw, max_memory * 2**20)[0]
        write_png(out_dir / f"{name}.png", img)
        if len(names) * img.size <= GRID_MAX_PIXELS:
            tiles.append(img)
    if len(tiles) == len(names) and len(names) > 1:
        write_png(out_dir / "grid.png", image_grid(np.stack(tiles)))
    if not quiet:
        table = Table("item", "file")
        for name in names:
            table.add_row(name, str(out_dir / f"{name}.png"))
        out.print(table)
    note(f"{len(names)} renders at {hw[0]}x{hw[1]} in {out_dir}", quiet)


def item_latents(r, inputs: list[str], latents: Path | None, n: int):
    """(names, latents [B, D]) from a latents file, input images, or the training items."""
    from inr_gon.latents import load_latents
    from inr_gon.run import load_inputs, training_items

    if latents is not None:
        if inputs:
            raise InputError("give INPUT images or --latents, not both")
        return load_latents(latents, r.cfg.latent_size)
    names, images = (load_inputs(inputs, r.cfg.size, r.cfg.channels) if inputs
                     else training_items(r.cfg, n))
    return names, r.encode(images)


def _decoder(r, backend: str, tensorrt: bool = False, quiet: bool = False):
    if backend == "torch":
        if tensorrt:
            raise InputError("--tensorrt needs --backend onnx")
        return lambda z, hw, mem: r.render(z, hw, mem)
    from inr_gon.export.runtime import onnx_renderer

    return onnx_renderer(r, tensorrt=tensorrt, quiet=quiet)
