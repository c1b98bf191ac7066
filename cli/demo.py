"""`inr-gon demo`: the whole path on built-in data."""

from __future__ import annotations

from pathlib import Path

import typer

from inr_gon.cli.common import app, out

Opt = typer.Option


@app.command()
def demo(
    out_dir: Path = Opt(None, "--out", help="Run folder (default runs/demo, never overwritten)"),
    quiet: bool = Opt(False, "--quiet"),
) -> None:
    """Train on builtin:shapes, render held-out items at 4x, report PSNR against the truth."""
    from inr_gon.demo import free_run_dir, run_demo

    f = run_demo(out_dir or free_run_dir(Path("runs/demo")), quiet=quiet)
    out.print(
        f"demo: {f['steps']} steps in {f['seconds']:.0f} s\n"
        f"  PSNR train {f['train_psnr']:.2f} dB, held-out {f['val_psnr']:.2f} dB, "
        f"held-out at 4x vs true pixels {f['val_psnr_4x_vs_truth']:.2f} dB\n"
        f"  pictures: {f['run']}/demo_heldout_4x.png (truth | reconstruction | 4x render), "
        f"{f['run']}/previews/, {f['run']}/loss.png", highlight=False)
