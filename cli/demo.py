"""`inr-gon demo`: the whole path on built-in data."""

from __future__ import annotations

from pathlib import Path

from inr_gon.cli.common import app, out
from inr_gon.cli.shared import shared
from inr_gon.demos.images import free_run_dir, run_demo
from inr_gon.demos.shapes import run_shapes_demo
from inr_gon.run import hold


@app.command(epilog="Example: inr-gon demo  (3D: inr-gon demo --shapes)")
def demo(
    out_dir: Path = shared("out", "Run folder (default runs/demo, never overwritten)"),
    quiet: bool = shared("quiet"),
    shapes: bool = shared("shapes"),
) -> None:
    """Train on builtin:shapes (and a super-resolution run beside it), render held-out items at
    4x, report PSNR against the truth and bicubic's."""
    run = out_dir or free_run_dir(Path("runs/demo-shapes" if shapes else "runs/demo"))
    with hold(run, create=True):  # the demo writes into its run after training it
        if shapes:
            return _shapes_demo(run, quiet)
        f = run_demo(run, quiet=quiet)
    out.print(
        f"demo: {f['steps']} steps in {f['seconds']:.0f} s\n"
        f"  PSNR train {f['train_psnr']:.2f} dB, held-out {f['val_psnr']:.2f} dB, "
        f"held-out at 4x vs true pixels {f['val_psnr_4x_vs_truth']:.2f} dB "
        f"(bicubic of the input: {f['val_psnr_4x_bicubic']:.2f} dB; the GON's own 4x render: "
        f"{f['val_psnr_4x_gon_render']:.2f} dB)\n"
        f"  4x by the super-resolution run {f['run']}/superres ({f['superres_steps']} steps in "
        f"{f['superres_seconds']:.0f} s)\n"
        f"  pictures: {f['run']}/demo_heldout_4x.png (truth | reconstruction | 4x render | "
        "bicubic), "
        f"{f['run']}/previews/, {f['run']}/loss.png", highlight=False)


def _shapes_demo(run: Path, quiet: bool) -> None:
    f = run_shapes_demo(run, quiet=quiet)
    out.print(
        f"demo --shapes: {f['steps']} steps in {f['seconds']:.0f} s; clamped L1 of the SDF "
        f"train {f['train_sdf_l1']:.4f}, held-out {f['val_sdf_l1']:.4f}\n"
        f"  {f['val_items']} held-out shapes meshed at {f['resolution']}^3 from one gradient step: "
        f"Chamfer-L1 {f['val_chamfer_l1']}, normal consistency {f['val_normal_consistency']}, "
        f"IoU {f['val_iou']} (normalised frame, radius 0.9)\n"
        f"  pictures: {f['run']}/demo_heldout.png (truth | reconstruction), meshes: "
        f"{f['run']}/demo_meshes/", highlight=False)
