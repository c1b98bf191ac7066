"""Peak memory of `inr-gon render` at 4096 x 4096 on the CPU.

    python benchmarks/render_memory.py [--size 4096] [--budgets 64,512] [--repeats 2]

Builds a run folder with the paper's decoder (SIREN 4 x 256, latent 32, RGB; one training
step on built-in shapes: the weights do not change the memory), then renders one item through
the command line in a fresh process per measurement and reads that process's peak resident set
(ru_maxrss of the child). Budgets (`--max-memory`, MiB of activations per decoder call) and a
bare `import inr_gon.cli.app` (the floor: Python, torch, numpy) alternate within every repeat.
Aim: under 1.5 GB at 4096 x 4096 with the default budget. JSON: results/render_memory.json.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from inr_gon.config import Config
from inr_gon.models.render import DEFAULT_MAX_MEMORY
from inr_gon.training.train import train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, parser, table, write_result  # noqa: E402


def peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of cmd, run under a fresh probe process whose only child it
    is, so the probe's RUSAGE_CHILDREN maximum is cmd's own peak."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "time.perf_counter() - t); sys.exit(r.returncode)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-2000:]}")
    kib, secs = out.stdout.split()[-2:]
    return int(kib) / 1024, float(secs)


def main() -> None:
    ap = parser(__doc__, size=4096, repeats=2)
    ap.add_argument("--budgets", default=f"64,{DEFAULT_MAX_MEMORY // 2**20}")
    args = ap.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cfg = Config.of(data="builtin:shapes:8", height=32, width=32, hidden=256, layers=4,
                        latent_dim=32, steps=1, batch_size=4, preview_every=0, checkpoint_every=0,
                        device="cpu")
        train(cfg, run, quiet=True)
        cli = [sys.executable, "-m", "inr_gon"]
        floor = [sys.executable, "-c", "import inr_gon.cli.app, inr_gon.run.load, inr_gon.models.render"]
        rows: dict[str, list[tuple[float, float]]] = {"import only": []}
        for _ in range(args.repeats):
            rows["import only"].append(peak_rss_mib(floor))
            for b in budgets:
                cmd = [*cli, "render", str(run), "-n", "1", "--size", str(args.size), "--device",
                       "cpu", "--max-memory", str(b), "--out", str(Path(tmp) / "out"), "--quiet"]
                rows.setdefault(f"--max-memory {b}", []).append(peak_rss_mib(cmd))
        png = next((Path(tmp) / "out").glob("*.png"))
        png_mib = png.stat().st_size / 2**20
    results = {k: {"peak_rss_mib": [round(m, 1) for m, _ in v], "seconds": [round(s, 2) for _, s in v],
                   "median_peak_rss_mib": round(median([m for m, _ in v]), 1),
                   "median_seconds": round(median([s for _, s in v]), 2)} for k, v in rows.items()}
    print(f"render {args.size} x {args.size} RGB, decoder 4 x 256, CPU; peak resident memory "
          f"(median of {args.repeats}); PNG {png_mib:.1f} MiB")
    print(table(["case", "peak RSS MiB", "seconds"],
                [[k, r["median_peak_rss_mib"], r["median_seconds"]] for k, r in results.items()]))
    path = write_result("render_memory", {
        "machine": machine(), "size": args.size, "channels": 3, "decoder": "4 x 256, latent 32",
        "repeats": args.repeats, "aim_mib": 1536, "results": results, "png_mib": round(png_mib, 2)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
