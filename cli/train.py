"""`inr-gon train` and `inr-gon demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from inr_gon.cli.common import app, note, out, parse_grid, parse_size
from inr_gon.cli.options import config_options, flag_name, shown_default, starting_config
from inr_gon.cli.shared import shared
from inr_gon.config import UNLIMITED_STEPS
from inr_gon.errors import InputError, warn
from inr_gon.run import load_config
from inr_gon.training.train import TrainResult
from inr_gon.training.train import train as run_training

Opt = typer.Option


@app.command(epilog="Example: inr-gon train photos/ --size 64 --steps 3000 --out runs/photos  "
             "(or: inr-gon train --preset demo; inr-gon train DATA --config my.toml)")
@config_options
def train(
    data: str = typer.Argument(None, help="Image folder, .npy/.npz array, mesh folder or "
                               "builtin:NAME (may come from --preset or --config instead)",
                               show_default=False),
    out_dir: Path = shared("out", "Run folder (default runs/<data name>)"),
    config_file: Path = shared("config"),
    preset: str = shared("preset"),
    size: str = shared("size", "Training resolution S or WxH, width x height (default 32)",
                    rich_help_panel="Data"),
    latent_grid: str = Opt(None, "--latent-grid", help="G or GxG (GxGxG for shapes): a grid of "
                           "--latent-dim vectors interpolated at each point (0: one vector)",
                           rich_help_panel="Model", show_default=shown_default("latent_grid")),
    resume: bool = shared("resume"),
    quiet: bool = shared("quiet"),
    fields: dict | None = None,
) -> None:
    """Train a GON on DATA; writes the run folder.

    Defaults marked images: apply to a folder of images or a .npy/.npz array, meshes: to a
    folder of meshes (the measured best, inr_gon/presets.py); built-in data takes the first."""


    flags = dict(fields or {})
    size_given = size is not None
    if size_given:
        flags["height"], flags["width"] = parse_size(size)
    if latent_grid is not None:
        flags["latent_grid"] = parse_grid(latent_grid)
    if "time_budget" in flags and "steps" not in flags:  # the clock alone ends the run
        flags["steps"] = UNLIMITED_STEPS
    if resume:  # a resumed run keeps its config; only --steps may extend it
        # (and where and how fast it runs: settings that leave the arithmetic alone)
        out_dir = out_dir or Path("runs") / _data_name(data or "run")
        saved = load_config(out_dir)
        kept = ("steps", "time_budget", "device", "compile", "threads", "data_workers", "tensorboard")
        # a flag that repeats the run's own value changes nothing: not worth a warning
        differ = {k for k, v in flags.items() if k not in kept and saved.flat().get(k) != v}
        ignored = [flag_name(k) for k in differ if k not in ("height", "width")]
        ignored = [*(["--size"] if {"height", "width"} & differ else []), *ignored,
                   *(["--preset"] if preset else []), *(["--config"] if config_file else [])]
        if ignored:
            warn(f"{out_dir}: --resume keeps the run's config; ignored {' '.join(ignored)}")
        cfg = saved.replace(**{k: flags[k] for k in kept if k in flags}).validate()
    else:
        if data is None and preset is None and config_file is None:
            raise InputError("train needs DATA (or a --preset or --config that names it)")
        cfg = starting_config(preset, config_file, {**flags, "data": data}, quiet)  # data None: not given
        out_dir = out_dir or Path("runs") / _data_name(cfg.dataset.data)
    result = run_training(cfg, out_dir, resume=resume, quiet=quiet)
    report(result, quiet)


def report(result: TrainResult, quiet: bool) -> None:
    if result.rank != 0:  # under torchrun, rank 0 speaks for the run
        if result.interrupted:
            raise typer.Exit(130)
        return
    run = result.run_dir
    if result.interrupted:  # one line: where it stopped, what was saved, how to go on
        out.print(f"stopped at step {result.step} of {result.total_steps}: checkpoint saved in "
                  f"{run} (step {result.step}); continue with: inr-gon train --resume --out {run}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    ended = f" (--time-budget {result.time_budget} reached)" if result.out_of_time else ""
    out.print(f"run {run}: step {result.step}{ended}, {_figures(result)}, {result.seconds:.0f} s",
              highlight=False, soft_wrap=True)
    image = result.metric == "psnr"
    previews = sorted((run / "previews").glob("step_*.png"))
    shown = [str(previews[-1]) if previews else "", str(run / "loss.png")
             if (run / "loss.png").exists() else ""]
    nxt = f"inr-gon render {run} --size 256" if image else f"inr-gon mesh {run} --resolution 256"
    note(f"pictures: {', '.join(x for x in shown if x) or 'none'}; next: {nxt}", quiet)


def _figures(result: TrainResult) -> str:
    """Train and held-out figures; the held-out one names how many items it rests on."""
    n = result.val_items
    items = f" ({n} item{'s' if n != 1 else ''})"
    if result.metric == "psnr":
        val = "n/a" if result.val_metric is None else f"{result.val_metric:.2f} dB{items}"
        return f"train PSNR {result.train_metric:.2f} dB, held-out PSNR {val}"
    val = "n/a" if result.val_metric is None else f"{result.val_metric:.4f}{items}"  # shapes: clamped L1
    return f"train {result.metric} {result.train_metric:.4f}, held-out {result.metric} {val}"


def _data_name(data: str) -> str:
    name = data.split(":", 1)[1] if data.startswith("builtin:") else Path(data).stem
    return name.replace(":", "-") or "run"
