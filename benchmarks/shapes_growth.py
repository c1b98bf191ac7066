"""How held-out shape quality grows with the number of training shapes (builtin:shapes3d).

    OMP_NUM_THREADS=1 python benchmarks/shapes_growth.py [--config grid-cg] [--counts 64,256,1024]
        [--steps 2000]

builtin:shapes3d is procedural (item i depends only on i), so a fixed held-out set of any size
is free: items HELD_FROM .. HELD_FROM + HELD - 1, never trained on. Each count N trains
configuration --config of benchmarks/shapes.py on items 0 .. N-1 for the same --steps, then
scores the training items (the first 16) and the held-out ones after one gradient-origin step
and after REFINE refine steps (IoU from the network's SDF at 100,000 uniform points, Chamfer-L1
and normal consistency of meshes at RESOLUTION^3). Writes benchmarks/results/shapes_growth.json.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks
from common import machine, parser, table, write_result  # noqa: E402
from shapes import CONFIGS, seconds_per_step  # noqa: E402

from inr_gon.config import Config  # noqa: E402
from inr_gon.inference.shape_eval import evaluate_shapes  # noqa: E402
from inr_gon.run import load_run  # noqa: E402
from inr_gon.training.train import train  # noqa: E402

HELD_FROM, HELD, TRAIN_SCORED, RESOLUTION, REFINE, SAMPLES = 1024, 16, 16, 128, 30, 20_000


def scores(run, data: str, only: list[int], refine: int = 0) -> dict:
    r = evaluate_shapes(run, data, quiet=True, resolution=RESOLUTION, points=10_000, only=only,
                        refine_steps=refine)
    return {**{k: round(v, 4) for k, v in r["mean"].items() if v is not None},
            "components_match": r["components_match"], "count": r["count"]}


def main() -> None:
    ap = parser(__doc__, steps=2000)
    ap.add_argument("--config", default="grid-cg", choices=list(CONFIGS))
    ap.add_argument("--counts", default="64,256,1024")
    args = ap.parse_args()
    work = Path(tempfile.gettempdir()) / "inr-gon-shapes-growth"
    held_data = f"builtin:shapes3d:{HELD_FROM + HELD}"
    held = list(range(HELD_FROM, HELD_FROM + HELD))
    rows = []
    for n in (int(c) for c in args.counts.split(",")):
        data = f"builtin:shapes3d:{n}"
        cfg = Config.of(data=data, steps=args.steps, seed=0, threads=1, device="cpu",
                        log_every=100, preview_every=0, checkpoint_every=args.steps,
                        val_fraction=0.0, sdf_samples=SAMPLES, **CONFIGS[args.config])
        out = work / f"{args.config}-{n}-{args.steps}"
        if not (out / "model.safetensors").exists():
            train(cfg, out, quiet=True)
        run = load_run(out, "cpu")
        row = {"train_shapes": n, "seconds_per_step": seconds_per_step(out),
               "train": scores(run, data, list(range(min(n, TRAIN_SCORED)))),
               "heldout_0": scores(run, held_data, held),
               "heldout_refined": scores(run, held_data, held, REFINE)}
        rows.append(row)
        print(f"N={n}: train IoU {row['train']['iou']:.3f} held-out IoU one step "
              f"{row['heldout_0']['iou']:.3f}, +{REFINE} refine {row['heldout_refined']['iou']:.3f}",
              flush=True)
    head = ["train shapes", "train IoU", "held-out IoU (1 step)", f"held-out IoU (+{REFINE})",
            "held-out Chamfer-L1 (1 step)", "held-out NC (1 step)"]
    print(table(head, [[r["train_shapes"], f"{r['train']['iou']:.3f}",
                        f"{r['heldout_0']['iou']:.3f}", f"{r['heldout_refined']['iou']:.3f}",
                        f"{r['heldout_0']['chamfer_l1']:.4f}",
                        f"{r['heldout_0']['normal_consistency']:.3f}"] for r in rows]))
    write_result(f"shapes_growth_{args.config}", {
        "config": args.config, "fields": CONFIGS[args.config], "steps": args.steps,
        "held_out": f"builtin:shapes3d items {HELD_FROM}..{HELD_FROM + HELD - 1}",
        "sdf_samples": SAMPLES, "resolution": RESOLUTION, "refine_steps": REFINE,
        "machine": machine(), "command": "OMP_NUM_THREADS=1 python benchmarks/shapes_growth.py "
        + " ".join(sys.argv[1:]), "rows": rows})


if __name__ == "__main__":
    main()
