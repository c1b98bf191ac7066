"""Options that change the objective: random point subsets per step and bf16 autocast, measured
for quality as well as speed (they are not counted in train_step.py's ratio).

    python benchmarks/objective_options.py [--steps 300] [--repeats 5] [--device cpu] [--threads N]

Real data: 900 Fashion-MNIST images at 28 x 28 (/work/shared/data, else built-in grey shapes),
SIREN 4 x 128, latent 32, batch 32. Quality: one full `inr_gon.training.train.train` run per option from
the same seed, PSNR on training and held-out images (gradient-origin latents, as the run
reports them), and for the point subsets also at equal compute (2x or 4x the steps). Speed:
the options' training steps alternate within each round (A B C D, ...)
on the same batches; medians and ratios to the full-fp32 step. JSON: results/objective_options.json.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from inr_gon.config import Config
from inr_gon.device import configure
from inr_gon.models.factory import build_model
from inr_gon.training.step import Stepper
from inr_gon.training.tasks import make_task
from inr_gon.training.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, parser, table, write_result  # noqa: E402
from train_step import FASHION, timed  # noqa: E402

OPTIONS = {"full, fp32": {}, "points 1/2": {"points_per_signal": 392},
           "points 1/4": {"points_per_signal": 196}, "bf16 autocast": {"precision": "bf16"}}
# the subsets again, with as many more steps as they are cheaper: quality at equal compute
LONGER = {"points 1/2, 2x steps": ("points 1/2", 2), "points 1/4, 4x steps": ("points 1/4", 4)}


def base_cfg(args) -> Config:
    data = str(FASHION) if FASHION.exists() else "builtin:shapes-gray:900"
    return Config.of(data=data, height=28, width=28, hidden=128, layers=4, latent_dim=32, batch_size=32,
                     lr=5e-4, steps=args.steps, val_fraction=0.1, log_every=50, preview_every=0,
                     checkpoint_every=0, device=args.device, seed=0, threads=args.threads)


def speed(args) -> dict[str, list[float]]:
    device = torch.device(args.device)
    steppers = {}
    for name, change in OPTIONS.items():
        cfg = base_cfg(args).replace(**change)
        task = make_task(cfg, device)
        torch.manual_seed(0)
        cfg = cfg.replace(summary=task.facts)  # what the data determined
        model = build_model(cfg).to(device)
        step = Stepper(model, torch.optim.Adam(model.parameters(), lr=cfg.train.lr), cfg, device)
        steppers[name] = (task, step)
    times: dict[str, list[float]] = {k: [] for k in OPTIONS}
    for r in range(args.repeats + 1):  # round 0 warms up
        for name, (task, step) in steppers.items():
            coords, values = task.batch(r)
            t = timed(lambda: step(coords, values, None, 1e-4), device)  # noqa: B023
            if r:
                times[name].append(t)
    return times


def main() -> None:
    ap = parser(__doc__, steps=300, repeats=5, device="cpu", threads=0)
    args = ap.parse_args()
    configure(base_cfg(args), torch.device(args.device))
    times = speed(args)
    runs = {**{k: (k, 1) for k in OPTIONS}, **LONGER}
    quality = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (option, mult) in runs.items():
            cfg = base_cfg(args).replace(**OPTIONS[option], steps=args.steps * mult)
            run = Path(tmp) / name.replace(" ", "_").replace("/", "-")
            res = train(cfg, run, quiet=False)  # progress: plain lines when piped
            quality[name] = {"steps": cfg.train.steps, "train_psnr": res.train_metric,
                             "val_psnr": res.val_metric, "seconds": res.seconds}
    full = times["full, fp32"]
    rows, out = [], {}
    for name, (option, _) in runs.items():
        ratios = [f / t for f, t in zip(full, times[option])]
        q = quality[name]
        rows.append([name, q["steps"], f"{median(times[option]):.3f}", f"{median(ratios):.2f}x",
                     f"{q['train_psnr']:.2f}", f"{q['val_psnr']:.2f}", f"{q['seconds']:.0f}"])
        out[name] = {"step_seconds": times[option], "median_step_seconds": median(times[option]),
                     "median_speedup": median(ratios), **q}
    print(f"Fashion-MNIST 28 x 28 (900 images), SIREN 4 x 128, batch 32, "
          f"{args.device}; step times: median of {args.repeats} alternating rounds")
    print(table(["option", "steps", "s/step", "speed-up", "train PSNR", "held-out PSNR", "run s"], rows))
    cfg = base_cfg(args)
    path = write_result(f"objective_options_{args.device}", {
        "machine": machine(args.device), "config": {k: v for k, v in cfg.to_dict().items() if k != "extra"},
        "options": out})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
