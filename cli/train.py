"""`inr-gon train` and `inr-gon demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from inr_gon.cli.common import app, config_from_flags, note, out
from inr_gon.config import Config
from inr_gon.errors import warn
from inr_gon.run import load_config

Opt = typer.Option


@app.command()
def train(
    data: str = typer.Argument(..., help="Image folder, .npy/.npz array, mesh folder or builtin:NAME"),
    out_dir: Path = Opt(None, "--out", help="Run folder (default runs/<data name>)"),
    size: str = Opt(None, "--size", help="Training resolution S or HxW"),
    steps: int = Opt(None, "--steps"),
    batch_size: int = Opt(None, "--batch-size"),
    latent_dim: int = Opt(None, "--latent-dim"),
    hidden: int = Opt(None, "--hidden"),
    layers: int = Opt(None, "--layers", help="Sine layers (the paper: 4)"),
    w0: float = Opt(None, "--w0"),
    w0_hidden: float = Opt(None, "--w0-hidden"),
    latent_init: float = Opt(None, "--latent-init"),
    inner_steps: int = Opt(None, "--inner-steps"),
    variational: bool = Opt(None, "--variational/--no-variational"),
    kl_weight: float = Opt(None, "--kl-weight"),
    detach_inner: bool = Opt(None, "--detach-inner/--no-detach-inner",
                             help="Ablation: no back-propagation through the gradient step"),
    model: str = Opt(None, "--model", help="gon | conv | ae"),
    lr: float = Opt(None, "--lr"),
    lr_min_ratio: float = Opt(None, "--lr-min-ratio"),
    seed: int = Opt(None, "--seed"),
    device: str = Opt(None, "--device", help="auto | cpu | cuda[:i] | mps"),
    precision: str = Opt(None, "--precision", help="fp32 | bf16"),
    points_per_signal: int = Opt(None, "--points-per-signal"),
    val_fraction: float = Opt(None, "--val-fraction"),
    log_every: int = Opt(None, "--log-every"),
    preview_every: int = Opt(None, "--preview-every"),
    checkpoint_every: int = Opt(None, "--checkpoint-every"),
    resume: bool = Opt(False, "--resume", help="Continue the run in --out from its checkpoint"),
    quiet: bool = Opt(False, "--quiet"),
) -> None:
    """Train a GON on DATA; writes the run folder."""
    flags = dict(locals())
    from inr_gon.train import train as run_training

    for k in ("data", "out_dir", "resume", "quiet"):
        flags.pop(k)
    out_dir = out_dir or Path("runs") / _data_name(data)
    base = load_config(out_dir) if resume else Config(data=data)
    if resume:  # a resumed run keeps its config; only --steps may extend it
        ignored = [f"--{k.replace('_', '-')}" for k, v in flags.items()
                   if v is not None and k not in ("steps", "device")]
        if ignored:
            warn(f"{out_dir}: --resume keeps the run's config; ignored {' '.join(ignored)}")
        flags = {"steps": flags["steps"], "device": flags["device"]}
    cfg = config_from_flags(base, **flags)
    result = run_training(cfg, out_dir, resume=resume, quiet=quiet)
    report(result, quiet)


def report(result, quiet: bool) -> None:
    val = "n/a" if result.val_psnr is None else f"{result.val_psnr:.2f} dB"
    out.print(f"run {result.run_dir}: step {result.step}, train PSNR {result.train_psnr:.2f} dB, "
              f"held-out PSNR {val}, {result.seconds:.0f} s", highlight=False)
    if result.interrupted:
        note(f"interrupted: checkpoint saved at step {result.step}; continue with "
             f"--resume --out {result.run_dir}")
        raise typer.Exit(130)


def _data_name(data: str) -> str:
    name = data.split(":", 1)[1] if data.startswith("builtin:") else Path(data).stem
    return name.replace(":", "-") or "run"
