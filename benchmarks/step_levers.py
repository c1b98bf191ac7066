"""Speed levers of the image default's training step, side by side in one run (issue 22 item 3).

    python benchmarks/step_levers.py --threads 2 --repeats 15
    python benchmarks/step_levers.py --variants fp32,bf16:precision=bf16,pps512:points_per_signal=512

Each variant is the config `inr-gon train cifar10.npy` trains (cli.options.starting_config: every
layer modulated by a 4x4 grid of 64-vectors, the Gauss-Newton step, batch 32) with the levers
off (LEVERS_OFF: float32, every pixel, as the default was before they were measured) and the
variant's fields changed, resolved and stepped by the package's own code (training.resolve,
training.step.Stepper: autocast, compile and all). The variants' steps are interleaved (one step
of each per round, after two warm-up rounds), so load drifts hit all alike; the median seconds a
step and a training image, and each one's ratio to the first variant's. A ratio says nothing of
quality: a lever is kept only if it raises held-out PSNR at equal wall-clock (quality_clock.py).
results/step_levers.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from inr_gon.cli.options import starting_config
from inr_gon.config import Config
from inr_gon.device import configure
from inr_gon.training import distributed
from inr_gon.training.resolve import resolve
from inr_gon.training.step import Stepper

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, parser, table, timed, typed_fields, write_result  # noqa: E402
from quality import data_path  # noqa: E402

DEFAULT_VARIANTS = "fp32,bf16:precision=bf16,pps512:points_per_signal=512,batch16:batch_size=16"
LEVERS_OFF = {"precision": "fp32", "points_per_signal": 0, "compile": False}


def variant_config(spec: str, args) -> tuple[str, Config]:
    """'name:field=value,...' -> (name, the default image config with those fields)."""
    name, _, fields = spec.partition(":")
    given = {"data": str(data_path("cifar")), "height": 32, "width": 32, "device": "cpu",
             "threads": args.threads, "preview_every": 0, "checkpoint_every": 0, **LEVERS_OFF}
    cfg = starting_config(None, None, given, quiet=True)
    return name, cfg.replace(**typed_fields(cfg, fields)).validate()


def stepper(cfg: Config) -> tuple[Stepper, object, int]:
    run = resolve(cfg, torch.device("cpu"), distributed.World(), resume=False, quiet=True)
    opt = torch.optim.Adam(run.model.parameters(), lr=cfg.train.lr)
    return Stepper(run.model, opt, run.cfg, torch.device("cpu")), run.task, run.cfg.train.batch_size


def main() -> None:
    ap = parser(__doc__, repeats=15, threads=2)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help="comma-separated name:field=value;field=value (the first is the baseline)")
    ap.add_argument("--name", default="step_levers")
    args = ap.parse_args()
    given = args.variants.split(",")
    specs = [variant_config(s, args) for s in given]
    configure(specs[0][1], torch.device("cpu"))  # threads, as `inr-gon train` applies them
    runs = {name: stepper(cfg) for name, cfg in specs}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(args.repeats + 2):
        for name, (step, task, _) in runs.items():
            coords, values = task.batch(r)
            seconds = timed(lambda: step(coords, values, None, 1e-4))  # noqa: B023
            if r >= 2:
                times[name].append(seconds)
    base = median(times[specs[0][0]]) / runs[specs[0][0]][2]
    rows, record = [], {}
    for spec, (name, _) in zip(given, specs):
        s, batch, fields = median(times[name]), runs[name][2], spec.partition(":")[2]
        record[name] = {"fields": fields, "batch": batch, "median_s_per_step": round(s, 4),
                        "images_per_s": round(batch / s, 2),
                        "speedup_per_image": round(base / (s / batch), 3),
                        "seconds": [round(x, 4) for x in times[name]]}
        rows.append([name, fields or "(levers off)", batch, f"{s:.3f}", f"{batch / s:.1f}",
                     f"{base / (s / batch):.2f}x"])
    print(table(["variant", "fields", "batch", "s/step", "images/s", "speed-up per image"], rows))
    write_result(args.name, {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                             "repeats": args.repeats, "variants": record})


if __name__ == "__main__":
    main()
