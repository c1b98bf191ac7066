"""`inr-gon train` and `inr-gon demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from inr_gon.cli.common import app, config_from_flags, note, out, parse_grid
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
    modulation: str = Opt(None, "--modulation",
                          help="first | all: the latent shifts the first or every sine layer"),
    latent_grid: str = Opt(None, "--latent-grid",
                           help="G or GxG(xG): a grid of --latent-dim vectors, interpolated (0: one)"),
    origin_step: str = Opt(None, "--origin-step", help="gradient | learned | gauss-newton"),
    lr: float = Opt(None, "--lr"),
    lr_min_ratio: float = Opt(None, "--lr-min-ratio"),
    seed: int = Opt(None, "--seed"),
    device: str = Opt(None, "--device", help="auto | cpu | cuda[:i] | mps"),
    precision: str = Opt(None, "--precision", help="fp32 | tf32 (CUDA matmuls) | bf16 (autocast)"),
    compile: bool = Opt(None, "--compile/--no-compile", help="torch.compile the training step"),
    threads: int = Opt(None, "--threads", help="CPU threads (0 = torch's default)"),
    data_memory: int = Opt(None, "--data-memory",
                           help="MiB of decoded images held in RAM; larger image folders stream"),
    data_workers: int = Opt(None, "--data-workers", help="Worker processes decoding a streamed folder"),
    points_per_signal: int = Opt(None, "--points-per-signal"),
    val_fraction: float = Opt(None, "--val-fraction"),
    log_every: int = Opt(None, "--log-every"),
    preview_every: int = Opt(None, "--preview-every"),
    checkpoint_every: int = Opt(None, "--checkpoint-every"),
    sdf_points: int = Opt(None, "--sdf-points", help="SDF: points per shape and step"),
    sdf_samples: int = Opt(None, "--sdf-samples", help="SDF: points sampled (cached) per shape"),
    sdf_noise: str = Opt(None, "--sdf-noise", help="SDF: near-surface noise scales, e.g. 0.005,0.05"),
    sdf_uniform: float = Opt(None, "--sdf-uniform", help="SDF: share of points uniform in the cube"),
    sdf_clamp: float = Opt(None, "--sdf-clamp", help="SDF: clamp of the L1 loss (DeepSDF)"),
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
        # (and where and how fast it runs: settings that leave the arithmetic alone)
        kept = ("steps", "device", "compile", "threads", "data_workers")
        ignored = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None and k not in kept]
        if ignored:
            warn(f"{out_dir}: --resume keeps the run's config; ignored {' '.join(ignored)}")
        flags = {k: flags[k] for k in kept}
    if flags.get("latent_grid") is not None:
        flags["latent_grid"] = parse_grid(flags["latent_grid"])
    cfg = config_from_flags(base, **flags)
    result = run_training(cfg, out_dir, resume=resume, quiet=quiet)
    report(result, quiet)


def report(result, quiet: bool) -> None:
    if result.rank != 0:  # under torchrun, rank 0 speaks for the run
        if result.interrupted:
            raise typer.Exit(130)
        return
    if getattr(result, "metric", "psnr") == "psnr":
        val = "n/a" if result.val_psnr is None else f"{result.val_psnr:.2f} dB"
        figures = f"train PSNR {result.train_psnr:.2f} dB, held-out PSNR {val}"
    else:  # shapes: mean clamped L1 of the SDF, normalised frame
        val = "n/a" if result.val_psnr is None else f"{result.val_psnr:.4f}"
        figures = f"train {result.metric} {result.train_psnr:.4f}, held-out {result.metric} {val}"
    out.print(f"run {result.run_dir}: step {result.step}, {figures}, {result.seconds:.0f} s",
              highlight=False)
    if result.interrupted:
        note(f"interrupted: checkpoint saved at step {result.step}; continue with "
             f"--resume --out {result.run_dir}")
        raise typer.Exit(130)


def _data_name(data: str) -> str:
    name = data.split(":", 1)[1] if data.startswith("builtin:") else Path(data).stem
    return name.replace(":", "-") or "run"
