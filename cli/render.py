"""`inr-gon render`: latents by the gradient-origin step, decoded on any grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from inr_gon import oom
from inr_gon.cli.common import app, note, out, parse_size
from inr_gon.cli.photo import render_saved_photos, render_whole
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError, wxh
from inr_gon.export.local import onnx_local_decoder
from inr_gon.export.runtime import onnx_renderer
from inr_gon.inference.inputs import first_training_items, load_inputs
from inr_gon.inference.latents import load_latent_photos
from inr_gon.io import write_png
from inr_gon.plots import image_grid
from inr_gon.progress import Progress
from inr_gon.run import hold_if_inside, load_run

GRID_MAX_PIXELS = 64 * 2**20


@app.command(epilog="Example: inr-gon render runs/demo photo.png --size 256 --out renders/")
def render(
    run: Path = shared("run"),
    inputs: list[str] = typer.Argument(None, help="Images, folders or .npy/.npz arrays "
                                       "(default: training items)"),
    size: str = shared("size"),
    scale: float = shared("scale"),
    whole: bool = shared("whole"),
    out_dir: Path = shared("out", "Output folder (default RUN/renders)"),
    backend: str = shared("backend"),
    fp16: bool = shared("fp16"),
    decoder: Path = shared("decoder"),
    tensorrt: bool = shared("tensorrt"),
    latents: Path = shared("latents", "Render saved latents (from `inr-gon fit`; from `fit "
                           "--whole`: the whole photos, at --size or --scale)"),
    n: int = shared("count", "How many training items (the first of the training split) when no "
                             "INPUT is given"),
    device: str = shared("device"),
    max_memory: int = shared("max_memory"),
    quiet: bool = shared("quiet"),
) -> None:
    """Render inputs (or the first training items) at any resolution; PNG per item + grid."""
    if backend not in ("torch", "onnx"):
        raise InputError(f"--backend must be torch or onnx, got '{backend}'")
    if backend == "torch" and (fp16 or decoder is not None):
        raise InputError("--fp16 and --decoder pick an exported ONNX file: add --backend onnx")
    if n < 1 or max_memory < 1:
        raise InputError("-n and --max-memory must be positive")
    r = load_run(run, device)
    r.require_images()  # before the training data is looked for as images
    out_dir = out_dir or run / "renders"
    if r.cfg.net.model == "local" and inputs and scale is None and size is None:
        scale = r.model.largest_scale
    saved, photos = None, None
    if latents is not None:
        if inputs:
            raise InputError("give INPUT images or --latents, not both")
        names, z, photos = load_latent_photos(latents, r.model.latent_size)
        saved = (names, z)
    if photos is not None:  # `fit --whole` latents: the photos put back together
        if backend != "torch" and r.cfg.net.model != "local":
            raise InputError("a GON's photo latents (`fit --whole`) render with the torch backend")
        decode = onnx_local_decoder(r, decoder, tensorrt, quiet, fp16) if backend == "onnx" else None
        with hold_if_inside(run, out_dir, is_dir=True), oom.guard(
                lambda what: f"render ran out of {what}; lower --max-memory (now {max_memory} "
                             "MiB), --scale or --size"):
            render_saved_photos(r, photos, z, parse_size(size), scale, out_dir, max_memory * 2**20,
                                quiet, decode)
        return
    if whole or scale is not None or (r.cfg.net.model == "local" and inputs):
        if latents is not None or (backend != "torch" and r.cfg.net.model != "local"):
            raise InputError("--whole/--scale render photos with the torch backend (onnx: a "
                             "local run's --scale); --latents only from `fit --whole`")
        decode = onnx_local_decoder(r, decoder, tensorrt, quiet, fp16) if backend == "onnx" else None
        with hold_if_inside(run, out_dir, is_dir=True), oom.guard(
                lambda what: f"render ran out of {what}; lower --max-memory (now {max_memory} MiB), "
                             "--scale or --size"):
            render_whole(r, inputs or [], parse_size(size), scale, out_dir, max_memory * 2**20, quiet,
                         decode)
        return
    hw = parse_size(size) or r.cfg.size
    # Before encoding: a missing file fails fast.
    decode = _decoder(r, backend, tensorrt, quiet, fp16, decoder)
    names, z = item_latents(r, inputs or [], saved, n, quiet)
    tiles = []
    with hold_if_inside(run, out_dir, is_dir=True), oom.guard(
            lambda what: f"render ran out of {what} at {hw[1]}x{hw[0]}; lower --max-memory "
                         f"(now {max_memory} MiB) or --size"), \
            Progress("render", len(names), unit="images", quiet=quiet, transient=True) as bar:
        for name, zi in zip(names, z):
            img = decode(zi[None], hw, max_memory * 2**20)[0]
            write_png(out_dir / f"{name}.png", img)
            if len(names) * img.size <= GRID_MAX_PIXELS:
                tiles.append(img)
            bar.update(advance=1)
        if len(tiles) == len(names) and len(names) > 1:
            write_png(out_dir / "grid.png", image_grid(np.stack(tiles)))
    if not quiet:
        table = Table("item", "file")
        for name in names:
            table.add_row(name, str(out_dir / f"{name}.png"))
        out.print(table)
    note(f"{len(names)} renders at {wxh(*hw)} in {out_dir}", quiet)


def item_latents(r, inputs: list[str], saved: tuple | None, n: int, quiet: bool = False):
    """(names, latents [B, D]): those of a latents file (`saved`, already read), of input
    images, or of the first n training items (saying how many of how many)."""
    if saved is not None:
        return saved
    if inputs:
        names, images = load_inputs(inputs, r.cfg.size, r.cfg.summary.channels,
                                    keep_smaller=r.cfg.net.model in ("gon", "local"))
    else:
        names, images, total = first_training_items(r.cfg, n)
        note(f"rendering {len(names)} of {total} training items; -n N for more" if total > len(names)
             else f"rendering all {total} training items", quiet)
    return names, r.encode(images)


def _decoder(r, backend: str, tensorrt: bool = False, quiet: bool = False, fp16: bool = False,
             path: Path | None = None):
    if backend == "torch":
        if tensorrt:
            raise InputError("--tensorrt needs --backend onnx")
        return lambda z, hw, mem: r.render(z, hw, mem)

    return onnx_renderer(r, path, tensorrt=tensorrt, quiet=quiet, fp16=fp16)
