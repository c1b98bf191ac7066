"""Whole photographs for `render --scale/--whole` and `fit --whole`: each input at its own
resolution as tiled latents (inr_gon/inference/photo.py); helpers of those two commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from inr_gon.cli.common import note, out
from inr_gon.errors import InputError, wxh
from inr_gon.inference.inputs import load_photo, photo_files, photo_hw
from inr_gon.inference.latents import PhotoTiles
from inr_gon.inference.photo import (
    PhotoLatents,
    check_photo,
    encode_photo,
    output_size,
    photo_psnr,
    render_photo,
)
from inr_gon.inference.superres import (
    fit_codes,
    render_codes,
    render_size,
    saved_batches,
    stack_codes,
    upscale_photo,
)
from inr_gon.io import write_png


def _files(r, inputs: list[str]) -> tuple[list[str], list[Path]]:
    if not inputs:
        raise InputError("whole-photo mode (--scale, --whole) needs INPUT photos")
    r.require_images()
    r.decoder  # noqa: B018  (InputError for a run without a SIREN decoder)
    return photo_files(inputs)


def render_whole(r, inputs: list[str], size: tuple[int, int] | None, scale: float | None,
                 out_dir: Path, max_memory: int, quiet: bool, decode=None) -> None:
    """Each photo encoded whole and rendered at `size` or `scale` x its own size (default 1).
    decode: a local run's decoder other than torch's (`upscale_photo`)."""
    names, files = _files(r, inputs)
    for f in files:  # every size checked from the headers before any work or any file written
        hw = photo_hw(f)
        if hw is not None:
            output_size(hw, scale, size)
            if r.cfg.net.model == "local":
                render_size(scale, size, hw)
    if r.cfg.net.model == "local":
        return _upscale_all(r, names, files, size, scale, out_dir, quiet, decode)
    table = Table("photo", "size", "render", "tiles", "file")
    for name, f in zip(names, files):
        photo = load_photo(f, r.cfg.summary.channels)
        check_photo(photo, str(f))
        hw = output_size(photo.shape[:2], scale, size)
        enc = encode_photo(r, photo)
        del photo
        _write_render(r, name, enc, hw, out_dir, max_memory, table)
    if not quiet:
        out.print(table)
    note(f"{len(names)} whole-photo renders in {out_dir}", quiet)


def _write_render(r, name: str, enc: PhotoLatents, hw: tuple[int, int], out_dir: Path,
                  max_memory: int, table: Table, decode=None) -> None:
    """One photo's tiles rendered at hw (H, W) into out_dir/NAME.png, and its table row. A
    local run's codes (enc.scale > 0) render at their own factor, hw = scale x the photo."""
    img = np.empty((*hw, r.cfg.summary.channels), dtype=np.uint8)
    if enc.scale:
        render_codes(r, enc.layout, saved_batches(enc), hw, img, decode)
    else:
        render_photo(r, enc, hw, img, max_memory)
    write_png(out_dir / f"{name}.png", img)
    table.add_row(name, wxh(*enc.size), wxh(*hw), str(len(enc.layout)), str(out_dir / f"{name}.png"))


def _upscale_all(r, names, files, size, scale, out_dir: Path, quiet: bool, decode=None) -> None:
    """A local run: each photo super-resolved by its factor (inference/superres.py)."""
    table = Table("photo", "size", "render", "file")
    for name, f in zip(names, files):
        photo = load_photo(f, r.cfg.summary.channels)
        check_photo(photo, str(f))
        hw = render_size(scale, size, photo.shape[:2])
        img = np.empty((*hw, r.cfg.summary.channels), dtype=np.uint8)
        upscale_photo(r, photo, hw, img, decode)
        write_png(out_dir / f"{name}.png", img)
        table.add_row(name, wxh(*photo.shape[:2]), wxh(*hw), str(out_dir / f"{name}.png"))
    if not quiet:
        out.print(table)
    note(f"{len(names)} super-resolved renders in {out_dir}", quiet)


def fit_whole(r, inputs: list[str], refine_steps: int, refine_lr: float, quiet: bool,
              scale: float | None = None) -> tuple[list[str], torch.Tensor, list[PhotoTiles], dict]:
    """Each photo encoded whole, rendered back at its own size and scored (PSNR); a local run
    encodes for rendering at `scale` x, and scores that render box-averaged back.
    -> (tile names, tile latents [T, D] (local: code grids [T, h, w, D]), where each photo's
    tiles lie, summary)."""
    names, files = _files(r, inputs)
    local = r.cfg.net.model == "local"
    if local and refine_steps:
        r.require_latent_space("--refine-steps")
    if scale is not None and not local:
        raise InputError("fit --scale applies to --whole on a local run (a GON's tile latents "
                         "render at any --scale)")
    rows, tile_names, zs, records, tile = [], [], [], [], (0, 0)
    for name, f in zip(names, files):
        photo = load_photo(f, r.cfg.summary.channels)
        check_photo(photo, str(f))
        enc, score = fit_codes(r, photo, scale) if local else _fit_tiles(r, photo, refine_steps,
                                                                           refine_lr)
        (ph, pw), (th, tw) = enc.size, enc.layout.tile
        rows.append({"name": name, "width": pw, "height": ph, "tiles": len(enc.layout),
                     f"psnr_{refine_steps}": score} | ({"scale": enc.scale} if local else {}))
        records.append(enc.record(name, len(tile_names)))
        tile_names += [f"{name}@{x},{y}" for y, x in enc.layout.corners()]
        zs.append(enc.z.cpu())
        tile = (max(tile[0], th), max(tile[1], tw))
    summary = {"refine_steps": refine_steps, "tile": wxh(*tile), "items": rows}
    if not quiet:
        out.print(_fit_table(rows, wxh(*tile), refine_steps, local))
    return tile_names, stack_codes(zs) if local else torch.cat(zs), records, summary


def _fit_tiles(r, photo: np.ndarray, refine_steps: int, refine_lr: float) -> tuple[PhotoLatents, float]:
    enc = encode_photo(r, photo, refine_steps, refine_lr)
    return enc, photo_psnr(render_photo(r, enc), photo)


def _fit_table(rows: list[dict], tile: str, refine_steps: int, local: bool) -> Table:
    back = ("rendered at S x by its codes and box-averaged back to its own size" if local
            else "rendered back at its own size")
    table = Table("photo", "size", "tiles", *(["S"] if local else []), "PSNR",
                  caption=f"tiles of {tile}; PSNR of the whole photo {back}"
                  + (f", after {refine_steps} refine steps" if refine_steps else ""))
    for row in rows:
        table.add_row(row["name"], f"{row['width']}x{row['height']}", str(row["tiles"]),
                      *([f"{row['scale']:g}"] if local else []),
                      f"{row[f'psnr_{refine_steps}']:.2f} dB")
    return table


def render_saved_photos(r, photos: list[PhotoTiles], z, size: tuple[int, int] | None,
                        scale: float | None, out_dir: Path, max_memory: int, quiet: bool,
                        decode=None) -> None:
    """The photos of a `fit --whole` latents file, each put back together from its tiles and
    rendered at `size` or `scale` x its own size (default 1; a local run's codes: the factor
    they were encoded for, decoded by `decode` as in `render_whole`)."""
    local = r.cfg.net.model == "local"
    for p in photos:  # every size checked before any work or any file written
        if bool(p.scale) != local:
            raise InputError(f"photo '{p.name}' was fitted by a {'local' if p.scale else 'GON'} "
                             f"run, this run is {'local' if local else 'a GON'}: another run's latents")
        if local:
            _check_code_scale(p, scale, size)
        elif p.tile != r.cfg.size:
            raise InputError(f"photo '{p.name}' was fitted in tiles of {p.tile[1]}x{p.tile[0]}, "
                             f"this run's are {r.cfg.size[1]}x{r.cfg.size[0]}: another run's latents")
        output_size(p.size, p.scale or scale, None if local else size)
    table = Table("photo", "size", "render", "tiles", "file")
    for p in photos:
        hw = output_size(p.size, p.scale or scale, None if local else size)
        _write_render(r, p.name, PhotoLatents.of(p, z), hw, out_dir, max_memory, table, decode)
    if not quiet:
        out.print(table)
    note(f"{len(photos)} whole-photo renders from saved latents in {out_dir}", quiet)


def _check_code_scale(p: PhotoTiles, scale: float | None, size: tuple[int, int] | None) -> None:
    """A local run's saved codes render at the factor they were encoded for, and only at it."""
    if scale is None and size is None:
        return
    if render_size(scale, size, p.size) != render_size(p.scale, None, p.size):
        raise InputError(f"photo '{p.name}' was encoded for {p.scale:g}x: render its codes at "
                         f"--scale {p.scale:g}, or fit it again with `fit --whole --scale S`")
