"""`inr-gon sample`: new signals drawn from a run's prior."""

from __future__ import annotations

from pathlib import Path

from inr_gon import oom
from inr_gon.cli.common import app, note, parse_size
from inr_gon.cli.shared import shared
from inr_gon.errors import InputError, wxh
from inr_gon.inference.latents import save_latents
from inr_gon.inference.sample import sample_latents
from inr_gon.io import write_png
from inr_gon.plots import image_grid
from inr_gon.run import hold_if_inside, load_run


@app.command(epilog="Example: inr-gon sample runs/vgon -n 16 --size 64")
def sample(
    run: Path = shared("run"),
    n: int = shared("count", "How many samples", default=16),
    size: str = shared("size"),
    prior: str = shared("prior"),
    seed: int = shared("seed"),
    out_dir: Path = shared("out", "Output folder (default RUN/samples)"),
    device: str = shared("device"),
    quiet: bool = shared("quiet"),
) -> None:
    """Draw new signals from the prior; a PNG each, grid.png, and their latents."""
    if n > 4096:
        raise InputError(f"-n {n} is above the limit of 4096 samples")
    r = load_run(run, device)
    r.require_latent_space("sample")
    r.require_images()
    hw = parse_size(size) or r.cfg.size
    with oom.guard(lambda what: f"sample ran out of {what} at {wxh(*hw)}; lower -n (now {n}) "
                   "or --size"):
        used, z = sample_latents(r, n, prior, seed)
        images = r.render(z, hw)
    out_dir = out_dir or run / "samples"
    names = [f"sample_{i:04d}" for i in range(n)]
    with hold_if_inside(run, out_dir, is_dir=True):
        for name, img in zip(names, images):
            write_png(out_dir / f"{name}.png", img)
        write_png(out_dir / "grid.png", image_grid(images))
        save_latents(out_dir / "latents.safetensors", names, z, run=str(run))
    note(f"{n} samples from the {used} prior at {wxh(*hw)} in {out_dir}", quiet)
