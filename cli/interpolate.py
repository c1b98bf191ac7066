"""`inr-gon interpolate`: a walk through the latent space between two inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer

from inr_gon import oom
from inr_gon.cli.common import app, note, parse_size
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError, wxh
from inr_gon.inference.latents import latent_spec
from inr_gon.inference.sample import (
    check_animation_path,
    endpoint_latents,
    slerp,
    write_animation,
)
from inr_gon.io import safe_name
from inr_gon.run import hold_if_inside, load_run

MAX_FRAME_PIXELS = 256 * 2**20  # pixels over all frames, held in memory at once


@app.command(epilog="Example: inr-gon interpolate runs/demo a.png b.png --frames 24  "
             "(writes runs/demo/interpolate/a_to_b.gif)")
def interpolate(
    run: Path = shared("run"),
    a: str = typer.Argument(..., help="First image, or latents: z.safetensors[:NAME] (from fit or sample)"),
    b: str = typer.Argument(..., help="Second image, or latents: z.safetensors[:NAME]"),
    out_file: Path = shared("out", "Animation file: .gif, or .mp4 with imageio-ffmpeg "
                                   "(default RUN/interpolate/A_to_B.gif)", show_default=False),
    frames: int = shared("frames"),
    size: str = shared("size"),
    fps: float = shared("fps"),
    device: str = shared("device"),
    quiet: bool = shared("quiet"),
) -> None:
    """Walk the latent space from A to B (slerp) and write the frames as an animation."""
    if not 2 <= frames <= 1000:
        raise InputError(f"--frames must lie in 2..1000, got {frames}")
    if not 0 < fps <= 120:
        raise InputError(f"--fps must lie in (0, 120], got {fps}")
    out_file = out_file or run / "interpolate" / f"{_stem(a)}_to_{_stem(b)}.gif"
    check_animation_path(out_file)
    r = load_run(run, device)
    r.require_latent_space("interpolate")
    r.require_images()
    hw = parse_size(size) or r.cfg.size
    if frames * hw[0] * hw[1] > MAX_FRAME_PIXELS:
        raise InputError(f"{frames} frames of {wxh(*hw)} is too much for one animation: "
                         "fewer --frames or a smaller --size")
    with oom.guard(lambda what: f"interpolate ran out of {what} at {wxh(*hw)}; lower --frames "
                   f"(now {frames}) or --size"):
        z = endpoint_latents(r, a, b)
        walk = slerp(z[0], z[1], torch.linspace(0, 1, frames))
        frames_out = np.asarray(r.render(walk, hw))
    with hold_if_inside(run, out_file, is_dir=False):
        write_animation(out_file, frames_out, fps)
    note(f"wrote {out_file}: {frames} frames at {wxh(*hw)} from {a} to {b}", quiet)


def _stem(endpoint: str) -> str:
    """'photos/a.png' -> 'a'; 'z.safetensors:sample_0003' -> 'z-sample_0003' (for a file name)."""
    file, name = latent_spec(endpoint) or (endpoint, "")
    return safe_name(Path(file).stem + (f"-{name}" if name else ""))
