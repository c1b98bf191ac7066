"""Held-out image quality per minute of CPU training (issue 22 item 2): each recipe trains for
the same wall-clock budgets, one after another in one invocation on one machine, and is scored
on the held-out split of the shared CIFAR-10 array (1,000 of 10,000 images, split by --seed, the
package's own split as in quality.py): mean PSNR and SSIM of ONE encoding pass, no refinement.

    python benchmarks/quality_clock.py --mode curve --minutes 2.5,5
    python benchmarks/quality_clock.py --mode separate --minutes 2.5,5,10,20
    python benchmarks/quality_clock.py --report       # rebuild the .md and .png from the .json

Recipes: paper = `--preset paper` at 32x32 RGB (quality.py's `paper`); default = what
`inr-gon train images/` (or an image array) trains today (cli.options.starting_config: every
layer modulated by a latent grid, 8x8 of 16-vectors, the Gauss-Newton step); functa = quality.py's
`functa` on the paper's base. --latent sets the latent values per image of all three (1,024:
the default's own size; 0 keeps each recipe's own, the paper's 32).

Modes. separate: each budget is its own run with --time-budget, so the learning rate decays over
that budget (the honest figure). curve: one run of the largest budget, stopped (as Ctrl-C stops
it: after a step, checkpoint saved) at each smaller budget, scored, and resumed; cheaper, but a
smaller budget's figure comes from a run whose learning rate had not yet decayed.
Training time excludes scoring; a stop lands within a step (plus a resume's setup) of its budget.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from inr_gon.cli.options import starting_config
from inr_gon.config import UNLIMITED_STEPS, Config
from inr_gon.device import native_bf16
from inr_gon.inference.evaluate import load_split
from inr_gon.io import atomic_write, read_json, write_json
from inr_gon.run import STATE_JSON, load_run
from inr_gon.training.train import read_metrics, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, table, typed_fields  # noqa: E402
from quality import CONFIGS, HELD_OUT, _pyplot, data_path, held_out_scores  # noqa: E402

# name -> (label, preset under the flags, Config changes)
RECIPES = {
    "paper": ("paper GON (--preset paper, 32x32)", "paper", {}),
    "default": ("image default (all, latent grid, Gauss-Newton)", None, {}),
    # before the speed levers (issue 22 item 3) became the default: float32, every pixel
    "default_fp32_all": ("image default, fp32, every pixel", None,
                         {"precision": "fp32", "points_per_signal": 0}),
    "default_bf16": ("image default, --precision bf16", None,
                     {"precision": "bf16", "points_per_signal": 0}),
    "default_pps512": ("image default, --points-per-signal 512", None,
                       {"precision": "fp32", "points_per_signal": 512}),
    "default_bf16_pps512": ("image default, bf16 and 512 points", None,
                            {"precision": "bf16", "points_per_signal": 512}),
    "default_compiled": ("image default, --compile", None, {"compile": True}),
    "functa": ("functa (all, learned step, 3 steps)", "paper", CONFIGS["functa"][1]),
}
CURVE_NOTE = ("curve mode: one run of the largest budget per recipe, stopped at each smaller "
              "budget, scored and resumed; a smaller budget's learning rate had not decayed "
              "(--mode separate gives each budget its own schedule)")


def recipe_config(name: str, seconds: float, args) -> Config:
    """The recipe's Config as `inr-gon train DATA --time-budget Ns` builds it (steps unlimited),
    or, with --steps, as `inr-gon train DATA --steps N` does (no budget)."""
    _, preset, changes = RECIPES[name]
    budget = {"steps": args.steps} if args.steps else {"steps": UNLIMITED_STEPS,
                                                        "time_budget": f"{seconds:g}s"}
    given = {"data": str(data_path(args.data)), "height": 32, "width": 32, "val_fraction": HELD_OUT,
             "seed": args.seed, "device": "cpu", "threads": args.threads, **budget,
             "preview_every": 0, "checkpoint_every": 0, **changes}
    cfg = starting_config(preset, None, given, quiet=True)
    extra = {k: v for k, v in (("hidden", args.hidden), ("batch_size", args.batch_size),
                               ("lr", args.lr)) if v}
    if args.grid is not None:
        extra["latent_grid"] = args.grid
    if args.latent:
        cells = max(extra.get("latent_grid", cfg.net.latent_grid), 1) ** 2
        if args.latent % cells:
            raise SystemExit(f"error: --latent {args.latent} does not split over {name}'s grid")
        extra["latent_dim"] = args.latent // cells
    cfg = cfg.replace(**extra)
    return cfg.replace(**typed_fields(cfg, args.set)).validate()


def trained_seconds(run_dir: Path) -> tuple[int, float]:
    """(steps, seconds of training) at the last checkpoint (before the loop's own evaluation)."""
    state = read_json(run_dir / STATE_JSON)
    return int(state["step"]), float(state["seconds"])


def score(name: str, minutes: float, run_dir: Path, args) -> dict:
    t = time.perf_counter()
    evals = [r for r in read_metrics(run_dir) if r.get("eval")]  # the loop's own, all held out
    run = load_run(run_dir, "cpu")
    names, images = load_split(run.cfg, run.cfg.dataset.data, "val", args.n_eval or None)
    steps, seconds = trained_seconds(run_dir)
    if args.steps:  # a step budget: the minutes it took
        minutes = round(seconds / 60, 2)
    row = {"recipe": name, "label": RECIPES[name][0], "mode": args.mode, "minutes": minutes,
           "steps": steps, "seconds": round(seconds, 1), "steps_per_s": round(steps / max(seconds, 1e-9), 3),
           **held_out_scores(run, names, images), "val_items": len(names),
           "loop_val_psnr": evals[-1].get("val_psnr") if evals else None, "latent": run.cfg.latent_size,
           "grid": run.cfg.net.latent_grid, "hidden": run.cfg.net.hidden,
           "batch": run.cfg.train.batch_size, "lr": run.cfg.train.lr, "set": args.set,
           "params": sum(p.numel() for p in run.model.parameters())}
    row["eval_seconds"] = round(time.perf_counter() - t, 1)
    print(f"{name} {minutes:g} min ({args.mode}): {steps} steps in {seconds:.0f} s, held-out "
          f"{row['val_psnr']:.2f} dB SSIM {row['val_ssim']:.3f} ({len(names)} items)", flush=True)
    return row


def train_until(cfg: Config, run_dir: Path, resume: bool, stop_at: float | None):
    """train() (or resume) until the budget in cfg ends it, or, with stop_at, at the first step
    that ends past stop_at seconds of training (the loop's own clock, resumes included: data
    loading and setup are not counted)."""
    return train(cfg, run_dir, resume=resume, quiet=True, stop_after=stop_at)


def measure(names: list[str], minutes: list[float], args, work: Path, save) -> list[dict]:
    """Every (recipe, budget) scored; save(rows) after each. separate mode with --work: a run
    finished there before (an evaluation logged) is scored again, not trained again."""
    rows = []
    for name in names:
        if args.mode == "separate":
            for m in minutes:
                run_dir = work / (f"{name}_{args.steps}steps" if args.steps else f"{name}_{m:g}m")
                if not any(r.get("eval") for r in read_metrics(run_dir)):
                    train(recipe_config(name, 60 * m, args), run_dir, quiet=True)
                rows.append(score(name, m, run_dir, args))
                save(rows)
            continue
        cfg, run_dir = recipe_config(name, 60 * max(minutes), args), work / f"{name}_curve"
        for i, m in enumerate(minutes):
            train_until(cfg, run_dir, i > 0, 60 * m if m < max(minutes) else None)
            rows.append(score(name, m, run_dir, args))
            save(rows)
    return rows


def cpu_facts() -> dict:
    """Cores, CPU model, native bf16 (the package's own test, `device.native_bf16`, beside
    /proc/cpuinfo's bf16 flags), load average."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    bf16 = sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})
    return {**machine(), "bf16_flags": bf16, "native_bf16": native_bf16(torch.device("cpu")),
            "load_avg": load_avg()}


def load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------------------------------
# Report: a table and PSNR against minutes, from the JSON
# --------------------------------------------------------------------------------------------


def report(record: dict, folder: Path, name: str) -> None:
    rows = sorted(record["rows"], key=lambda r: (list(RECIPES).index(r["recipe"]), r["minutes"]))
    m, note = record["machine"], ""
    header = ["recipe", "minutes", "steps", "train s", "steps/s", "held-out PSNR", "SSIM",
              "items", "latent", "grid", "hidden", "batch", "lr", "set"]
    body = [[r["label"], f"{r['minutes']:g}", r["steps"], f"{r['seconds']:.0f}", f"{r['steps_per_s']:.3g}",
             f"{r['val_psnr']:.2f} dB", f"{r['val_ssim']:.3f}", r["val_items"], r["latent"],
             r.get("grid", "-"), r["hidden"], r["batch"], f"{r.get('lr', 0):g}", r.get("set") or "-"]
            for r in rows]
    try:
        plot(rows, record, folder / f"{name}.png")
    except ImportError:
        note = "\n(no plot: matplotlib is not installed; `pip install matplotlib`, then --report)\n"
    md = [f"# Held-out quality per wall-clock minute ({record['mode']} mode)\n",
          f"CIFAR-10 (the shared 10,000-image array), {rows[0]['val_items'] if rows else 0} held-out "
          f"items of the package's split (seed {record['seed']}), one encoding pass, no refinement. "
          "Train s: seconds of training at the scored checkpoint (scoring excluded).\n",
          *([f"{CURVE_NOTE}.\n"] if record["mode"] == "curve" else []),
          f"Machine: {m['cpu']}, {m['cpu_count']} cores, torch {m['torch']} ({m['threads']} threads), "
          f"native bf16: {'yes (' + ', '.join(m['bf16_flags']) + ')' if m['native_bf16'] else 'no'}; "
          f"load average (1, 5, 15 min) {m['load_avg']} at the start, {record['load_end']} at the "
          f"end; {record['date']}.\n", "```", table(header, body), "```", note,
          "Command:", "", "```", record["command"], "```", ""]
    atomic_write(folder / f"{name}.md", "\n".join(md).encode())


def plot(rows: list[dict], record: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for recipe in RECIPES:
        pts = sorted((r["minutes"], r["val_psnr"]) for r in rows if r["recipe"] == recipe)
        if pts:
            ax.plot(*zip(*pts), "o-", label=RECIPES[recipe][0])
    ax.set_xscale("log")
    ticks = sorted({r["minutes"] for r in rows})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training minutes (wall clock)")
    ax.set_ylabel("held-out PSNR (dB), one encoding pass")
    ax.set_title(f"CIFAR-10 held-out, {record['mode']} mode, {record['machine']['cpu_count']} cores",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", default="2.5,5,10,20", help="wall-clock budgets, e.g. 2.5,5,10,20")
    p.add_argument("--recipes", default="paper,default,functa", help="from: " + ",".join(RECIPES))
    p.add_argument("--mode", choices=("separate", "curve"), default="separate")
    p.add_argument("--n-eval", type=int, default=0, help="held-out items scored (0 = all 1,000)")
    p.add_argument("--latent", type=int, default=1024, help="latent values per image (0: the recipe's)")
    p.add_argument("--grid", type=int, help="latent grid side G (0: one vector; default: the recipe's)")
    p.add_argument("--steps", type=int, default=0,
                   help="a fixed step count instead of --minutes (separate mode): quality at equal "
                        "steps, which load does not change, for runs side by side")
    p.add_argument("--hidden", type=int, default=0, help="decoder width (0: the recipe's, 256)")
    p.add_argument("--batch-size", type=int, default=0, help="0: the recipe's (paper 64, default 32)")
    p.add_argument("--lr", type=float, default=0.0, help="0: the recipe's (1e-4)")
    p.add_argument("--set", default="", help='other config fields, e.g. "layers=3;warmup_steps=200"')
    p.add_argument("--data", default="cifar", help="cifar | a .npy [N, 32, 32, 3]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default (every core)")
    p.add_argument("--work", type=Path, help="keep the run folders here (default: a temporary folder)")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of the .json/.md/.png")
    p.add_argument("--name", default="quality_clock", help="file name of the results")
    p.add_argument("--report", action="store_true", help="only rebuild the .md and .png")
    args = p.parse_args()
    if args.report:
        report(read_json(args.results / f"{args.name}.json"), args.results, args.name)
        print((args.results / f"{args.name}.md").read_text())
        return
    names = [r for r in args.recipes.split(",") if r]
    if unknown := sorted(set(names) - set(RECIPES)):
        p.error(f"unknown recipes {unknown}; choose from {list(RECIPES)}")
    minutes = [0.0] if args.steps else sorted(float(x) for x in args.minutes.split(",") if x)
    if args.steps and args.mode != "separate":
        p.error("--steps needs --mode separate")
    if not args.steps and (not minutes or minutes[0] <= 0):
        p.error("--minutes needs positive budgets")
    if args.threads:
        torch.set_num_threads(args.threads)
    facts = cpu_facts()
    command = "python " + shlex.join(["benchmarks/quality_clock.py", *sys.argv[1:]])
    args.results.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "quality_clock", "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "mode": args.mode, "seed": args.seed, "command": command, "machine": facts,
              "note": CURVE_NOTE if args.mode == "curve" else "", "rows": []}

    def save(rows: list[dict]) -> None:  # after every row: a cut run keeps what it measured
        write_json(args.results / f"{args.name}.json", {**record, "rows": rows, "load_end": load_avg()})

    with tempfile.TemporaryDirectory() as tmp:
        measure(names, minutes, args, args.work or Path(tmp), save)
    report(read_json(args.results / f"{args.name}.json"), args.results, args.name)
    print((args.results / f"{args.name}.md").read_text())


if __name__ == "__main__":
    main()
