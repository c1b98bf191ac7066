"""The paper's claims, measured: implicit GON vs convolutional GON vs autoencoder vs GON with
the inner gradient detached, with the same data, split, batches and number of steps.

    python benchmarks/claims.py                     # Fashion-MNIST sprite, short budget
    python benchmarks/claims.py --steps 3000        # a longer run
    python benchmarks/claims.py more.npy --size 32  # any [N, H, W(, C)] .npy as well

Writes benchmarks/results/claims.md (the table), claims.json and claims_<data>.png (training
MSE per step, log scale: blue implicit GON, orange conv GON, green autoencoder, red detached).
Held-out figures are of the run's own validation split, latents by one gradient step (GONs) or
the encoder (autoencoder), no refinement.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

from inr_gon.config import Config
from inr_gon.inference.evaluate import load_split
from inr_gon.inference.fit import fit_images
from inr_gon.io import atomic_write, write_json
from inr_gon.plots import line_figure, save_figure
from inr_gon.run import load_run
from inr_gon.training.train import read_metrics, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = "shared/data/fashion_sprite900_images.npy"
TARGET_MSE = 0.0053  # implicit GON, 28x28 digits, reference config (an independent re-implementation)

# name -> (label, config changes). conv: the paper's GON.py (nz = 32, ngf = 16: 64-32-16 channels).
MODELS = {
    "gon": ("implicit GON (SIREN 4x256)", {"model": "gon"}),
    "conv": ("convolutional GON (paper's GON.py)", {"model": "conv", "hidden": 64, "layers": 4}),
    "ae": ("autoencoder (conv encoder + same SIREN)", {"model": "ae"}),
    "detached": ("implicit GON, inner gradient detached", {"model": "gon", "detach_inner": True}),
}


def default_data() -> list[Path]:
    for base in (ROOT.parent, ROOT.parent.parent):  # ../shared from a checkout or a worktree
        if (base / SHARED).is_file():
            return [base / SHARED]
    return []


def base_config(data: Path, args) -> Config:
    return Config.of(data=str(data), height=args.size, width=args.size, latent_dim=32, hidden=256,
                     layers=4, w0=30.0, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                     val_fraction=0.1, seed=args.seed, device=args.device,
                     log_every=max(1, args.steps // 60), preview_every=0, checkpoint_every=0)


def measure(cfg: Config, run_dir: Path) -> dict:
    """Train one model, then score it on its training items and on the held-out split."""
    result = train(cfg, run_dir, quiet=False)  # progress: plain lines when piped
    run = load_run(run_dir, cfg.train.device)
    row = {"params": sum(p.numel() for p in run.model.parameters()), "seconds": result.seconds}
    for split in ("train", "val"):
        names, images = load_split(run.cfg, cfg.dataset.data, split)
        scores = fit_images(run, images, names).scores0
        row[f"{split}_mse"] = float(scores["mse"].mean())
        row[f"{split}_psnr"] = float(scores["psnr"].mean())
        row[f"{split}_ssim"] = float(scores["ssim"].mean())
    rows = [r for r in read_metrics(run_dir) if "loss" in r]
    row["curve"] = {"step": [r["step"] for r in rows], "mse": [10 ** (-r["psnr"] / 10) for r in rows]}
    return row


def table(name: str, results: dict, args) -> str:
    head = (f"### {name}: {args.steps} steps, batch {args.batch_size}, lr {args.lr:g}, "
            f"{args.size}x{args.size}, seed {args.seed}\n\n"
            "| model | parameters | train MSE | held-out MSE | held-out PSNR | held-out SSIM | seconds |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    lines = [f"| {MODELS[k][0]} | {r['params']:,} | {r['train_mse']:.5f} | {r['val_mse']:.5f} | "
             f"{r['val_psnr']:.2f} dB | {r['val_ssim']:.3f} | {r['seconds']:.0f} |"
             for k, r in results.items()]
    return head + "\n".join(lines) + "\n\n" + verdicts(results) + "\n"


def verdicts(results: dict) -> str:
    out = []
    if "gon" in results:
        g = results["gon"]["val_mse"]
        out.append(f"- implicit GON held-out MSE {g:.5f} vs the {TARGET_MSE} target: "
                   f"{'reached' if g < TARGET_MSE else 'not reached'}")
        if "ae" in results:
            a = results["ae"]["val_mse"]
            out.append(f"- implicit GON held-out MSE {'at or below' if g <= a else 'above'} the "
                       f"autoencoder's ({g:.5f} vs {a:.5f}, ratio {g / a:.2f})")
        if "detached" in results:
            d = results["detached"]["val_mse"]
            out.append(f"- detaching the inner gradient: held-out MSE {d:.5f} vs {g:.5f} "
                       f"(ratio {d / g:.2f})")
    return "\n".join(out)


def plot(path: Path, results: dict) -> None:
    steps = next(iter(results.values()))["curve"]["step"]
    series = {k: r["curve"]["mse"] for k, r in results.items() if r["curve"]["step"] == steps}
    series = {MODELS[k][0]: v for k, v in series.items()}
    save_figure(line_figure(steps, series, "training MSE (log scale)",
                            title="training MSE per step, same data and steps"), path)


def main() -> None:
    p = parser(__doc__, steps=150, size=28, seed=0, device="cpu", threads=2)
    p.add_argument("data", nargs="*", type=Path, help=".npy image stacks (default: the shared sprite)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4, help="the paper's Adam step size")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data or default_data()
    if not data:
        p.error(f"no data given and ../{SHARED} not found")
    models = [m for m in args.models.split(",") if m]
    if unknown := sorted(set(models) - set(MODELS)):
        p.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    report, everything, t0 = [], {}, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for path in data:
            results = {}
            for m in models:
                cfg = base_config(path, args).replace(**MODELS[m][1]).validate()
                results[m] = measure(cfg, Path(tmp) / f"{path.stem}-{m}")
                print(f"{path.stem} {m}: held-out MSE {results[m]['val_mse']:.5f} "
                      f"({results[m]['seconds']:.0f} s)", flush=True)
            report.append(table(path.stem, results, args))
            plot(args.out / f"claims_{path.stem}.png", results)
            everything[path.stem] = {"args": {k: str(v) for k, v in vars(args).items()},
                                     "results": results}
    text = "\n".join(report)
    print("\n" + text + f"\ntotal {time.perf_counter() - t0:.0f} s")
    atomic_write(args.out / "claims.md", text.encode())
    write_json(args.out / "claims.json", everything)


if __name__ == "__main__":
    main()
