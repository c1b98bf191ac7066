"""Steps/s and held-out PSNR of the paper's reference config on real data.

SIREN 4 x 256, w0 = 30, latent 32, batch 64, 28 x 28 Fashion-MNIST (the 900 real images in
../shared/data), 10% held out. Prints a table and writes benchmarks/results/train_reference.json.

    python benchmarks/train_reference.py [--steps 1000] [--data PATH.npy]
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from inr_gon.config import Config
from inr_gon.training.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fashion_sprite900_images.npy"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    p = parser(__doc__, steps=1000, out=str(ROOT / "benchmarks" / "results" / "train_reference.json"))
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args()
    cfg = Config.of(data=args.data, height=28, width=28, hidden=256, layers=4, w0=30.0, latent_dim=32,
                    batch_size=64, steps=args.steps, lr=args.lr, val_fraction=0.1,
                    preview_every=0, checkpoint_every=0, log_every=50)
    run_dir = Path(tempfile.mkdtemp(prefix="inr-gon-bench-"))
    try:
        t0 = time.perf_counter()
        res = train(cfg, run_dir / "run", quiet=False)  # progress: plain lines when piped
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    row = {
        "machine": f"{cpu_name()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__, "steps": res.step, "seconds": round(res.seconds, 1),
        "steps_per_s": round(res.step / res.seconds, 3), "train_psnr": round(res.train_metric, 2),
        "heldout_psnr": round(res.val_metric, 2),
        "wall_with_data_and_eval_s": round(wall, 1), "config": "SIREN 4x256 w0=30 latent 32 batch 64 28x28",
    }
    table = Table("measure", "value", title="GON reference config on Fashion-MNIST (900 real images)")
    for k, v in row.items():
        table.add_row(k, str(v))
    Console().print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
