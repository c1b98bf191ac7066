"""Image quality of the model options (issue 12), measured: held-out PSNR and SSIM of ONE
encoding pass (no refinement) after a fixed number of training steps, on real photographs
(CIFAR-10, 1,000 images held out by seed) and Fashion-MNIST (the 900-image sprite, 90 held out).

    python benchmarks/quality.py --configs paper,ae --latents 256,1024 --steps 300
    python benchmarks/quality.py --data fashion --configs paper,grid_gn --latents 256
    python benchmarks/quality.py --report      # rebuild the table and figures only

Each (data, config, decoder width, latent size, steps, batch) trains once with the package's own
training loop (inr_gon.train) and leaves a record in benchmarks/results/quality_runs/ (scores,
training curve, the exact command, a strip of held-out reconstructions); runs already recorded
are skipped unless --force. Every invocation then rebuilds, from all records:
quality.json, quality.md (table and commands), quality_psnr_steps.png (PSNR against steps) and
quality_<data>_grid.png (held-out items: truth | each model).

A "latent size" is the number of latent values per image: with a G x G grid of D-vectors it is
G * G * D. Time per step is a training step at --time-batch (64) timed in the same process as the
paper's step at the same latent size (interleaved, median), reported as a ratio.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch

from inr_gon.config import Config
from inr_gon.inference.evaluate import load_split
from inr_gon.inference.fit import fit_images
from inr_gon.io import atomic_write, read_json, write_json, write_png
from inr_gon.models.factory import build_model
from inr_gon.models.render import grid
from inr_gon.plots import image_grid, upscale_nearest
from inr_gon.run import load_run
from inr_gon.training.step import Stepper
from inr_gon.training.train import read_metrics, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "quality_runs"
DATA = {"cifar": "shared/data/cifar10_train10k_images.npy",
        "fashion": "shared/data/fashion_sprite900_images.npy"}
SIZES = {"cifar": 32, "fashion": 28}
HELD_OUT = 0.1  # CIFAR: 1,000 of 10,000; Fashion-MNIST: 90 of 900 (split by --seed)
SHOWN = 8  # held-out items in the picture grid

# name -> (label, Config changes, grid side G or 0). Unlisted fields keep the paper's values
# (Config's defaults: SIREN 4 x 256, w0 30, latent_init 5, one gradient step, first layer).
CONFIGS = {
    "paper": ("paper GON (first layer, gradient)", {}, 0),
    "all": ("modulation all", {"modulation": "all"}, 0),
    "learned": ("learned step", {"origin_step": "learned"}, 0),
    "gn": ("Gauss-Newton step", {"origin_step": "gauss-newton"}, 0),
    "grid": ("grid 4x4, gradient", {}, 4),
    "grid_gn": ("grid 4x4 + Gauss-Newton", {"origin_step": "gauss-newton"}, 4),
    "grid_learned": ("grid 4x4 + learned step", {"origin_step": "learned"}, 4),
    "all_gn": ("all + Gauss-Newton", {"modulation": "all", "origin_step": "gauss-newton"}, 0),
    "all_grid": ("all + grid 4x4", {"modulation": "all"}, 4),
    "all_grid_gn": ("all + grid 4x4 + Gauss-Newton",
                    {"modulation": "all", "origin_step": "gauss-newton"}, 4),
    "grid8_gn": ("grid 8x8 + Gauss-Newton", {"origin_step": "gauss-newton"}, 8),
    "functa": ("functa recipe (all, learned, 3 steps)",
               {"modulation": "all", "origin_step": "learned", "inner_steps": 3}, 0),
    "ae": ("autoencoder (conv encoder, same SIREN)", {"model": "ae"}, 0),
}


def data_path(name: str) -> Path:
    if name not in DATA:
        return Path(name)
    for base in (ROOT.parent, ROOT.parent.parent, Path("/work")):  # ../shared from a worktree
        if (base / DATA[name]).is_file():
            return base / DATA[name]
    sys.exit(f"error: ../{DATA[name]} not found")


def config_for(name: str, latent: int, args) -> Config:
    """The Config of a named configuration at `latent` values per image."""
    _, changes, g = CONFIGS[name]
    known = {f.name for f in dataclasses.fields(Config)}
    wanted = set(changes) | ({"latent_grid"} if g else set())
    if missing := sorted(wanted - known):
        raise KeyError(f"{name} needs Config fields {missing} (the quality core)")
    if latent % max(g * g, 1):
        raise ValueError(f"{name}: {latent} latent values do not split over a {g}x{g} grid")
    size, path = SIZES.get(args.data, args.size), data_path(args.data)
    shape = np.load(path, mmap_mode="r").shape  # [N, H, W] or [N, H, W, C]
    cfg = Config.of(data=str(path), height=size, width=size, channels=shape[3] if len(shape) == 4 else 1,
                    latent_dim=latent // max(g * g, 1), hidden=args.hidden, steps=args.steps,
                    batch_size=args.batch_size, lr=args.lr, val_fraction=HELD_OUT, seed=args.seed,
                    device="cpu", threads=args.threads, log_every=max(1, args.steps // 100),
                    preview_every=0, checkpoint_every=0)
    return cfg.replace(**changes, **({"latent_grid": g} if g else {})).validate()


def run_key(name: str, latent: int, args) -> str:
    return f"{args.data}_{name}_h{args.hidden}_L{latent}_s{args.steps}_b{args.batch_size}_lr{args.lr:g}"


def measure(name: str, latent: int, args, work: Path) -> dict:
    """Train one configuration (or reuse its finished run folder under --work), then score one
    encoding pass on the held-out items."""
    cfg = config_for(name, latent, args)
    run_dir = work / run_key(name, latent, args)
    done = [r for r in read_metrics(run_dir) if r.get("eval")] if run_dir.is_dir() else []
    if done:
        train_psnr, seconds = done[-1]["train_psnr"], done[-1]["seconds"]
    else:
        result = train(cfg, run_dir, quiet=True)
        train_psnr, seconds = result.train_metric, result.seconds
    run = load_run(run_dir, "cpu")
    row = {"config": name, "label": CONFIGS[name][0], "data": args.data, "latent": latent,
           "hidden": args.hidden, "steps": args.steps, "batch": args.batch_size, "lr": args.lr,
           "params": sum(p.numel() for p in run.model.parameters()),
           "train_seconds": round(seconds, 1), "fields": _fields(cfg)}
    names, images = load_split(run.cfg, cfg.dataset.data, "val")
    row.update(held_out_scores(run, names, images))
    row["train_psnr"] = train_psnr  # the loop's own: the first 256 training items
    recon = run.reconstruct(images[:SHOWN])
    row["shown"] = np.round(np.concatenate([images[:SHOWN], recon]), 4).tolist()
    logged = [r for r in read_metrics(run_dir) if "psnr" in r and "loss" in r]
    row["curve"] = {"step": [r["step"] for r in logged], "psnr": [r["psnr"] for r in logged]}
    return row


def held_out_scores(run, names: list[str], images: np.ndarray) -> dict:
    """Mean PSNR and SSIM of one encoding pass over held-out images (load_split's "val")."""
    scores = [fit_images(run, images[i:i + 100], names[i:i + 100]).scores0  # bounded memory
              for i in range(0, len(names), 100)]
    return {"val_psnr": float(np.mean(np.concatenate([s["psnr"] for s in scores]))),
            "val_ssim": float(np.nanmean(np.concatenate([s["ssim"] for s in scores])))}


def _fields(cfg: Config) -> dict:
    skip = {"data", "extra", "device", "threads", "log_every", "preview_every", "checkpoint_every"}
    return {k: v for k, v in cfg.to_dict().items() if k not in skip}


def step_seconds(cfg: Config, batch: int, steps: int = 2) -> list[float]:
    """Seconds of `steps` training steps (after one warm-up) on a random batch of the data's shape."""
    cfg = cfg.replace(batch_size=batch)
    torch.manual_seed(0)
    model = build_model(cfg)
    stepper = Stepper(model, torch.optim.Adam(model.parameters(), lr=cfg.train.lr), cfg, torch.device("cpu"))
    coords = grid(cfg.dataset.height, cfg.dataset.width)
    values = torch.rand(batch, cfg.dataset.height * cfg.dataset.width, cfg.summary.channels)
    out = []
    for i in range(steps + 1):
        t = time.perf_counter()
        stepper(coords, values, None, cfg.train.lr)
        if i:
            out.append(time.perf_counter() - t)
    return out


def time_ratio(name: str, latent: int, args) -> dict:
    """Median step time of `name` and of the paper's GON at the same latent size, interleaved."""
    mine, paper = [], []
    a, b = config_for(name, latent, args), config_for("paper", latent, args).replace(hidden=256)
    for _ in range(2):
        paper += step_seconds(b, args.time_batch)
        mine += step_seconds(a, args.time_batch)
    m, p = float(np.median(mine)), float(np.median(paper))
    return {"step_seconds": round(m, 4), "paper_step_seconds": round(p, 4),
            "time_ratio": round(m / p, 3), "time_batch": args.time_batch}


# --------------------------------------------------------------------------------------------
# Report: table, plot and picture grid from every record
# --------------------------------------------------------------------------------------------


def load_records() -> list[dict]:
    records = []
    for path in sorted(RUNS.glob("*.json")):
        r = read_json(path)
        if "shown" in r:  # pixels go to a PNG beside the record, not into the JSON
            write_png(path.with_suffix(".png"), np.concatenate(np.asarray(r.pop("shown")), axis=1))
            write_json(path, r)
        records.append({**r, "key": path.stem})
    return records


def shown(record: dict) -> np.ndarray:
    """[2 * SHOWN, h, w, C] float: the held-out items, then their reconstructions."""
    img = iio.imread(RUNS / f"{record['key']}.png").astype(np.float32) / 255.0
    img = img[..., None] if img.ndim == 2 else img
    return np.stack(np.split(img, 2 * SHOWN, axis=1))


def report(records: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    slim = [{k: v for k, v in r.items() if k not in ("curve", "key")} for r in records]
    write_json(RESULTS / "quality.json", {"benchmark": "quality", "runs": slim})
    atomic_write(RESULTS / "quality.md", markdown(records).encode())
    if records:
        plot_curves(records, RESULTS / "quality_psnr_steps.png")
    for data in sorted({r["data"] for r in records}):
        picture_grid([r for r in records if r["data"] == data], RESULTS / f"quality_{data}_grid.png")


def markdown(records: list[dict]) -> str:
    order = list(CONFIGS)
    rows = sorted(records, key=lambda r: (r["data"], r["steps"], r["latent"],
                                          order.index(r["config"]), r["hidden"]))
    out = ["# Image quality: one encoding pass, held-out items\n",
           "CIFAR-10: 10,000 training images of the shared file, 1,000 held out by seed 0 "
           "(`val_fraction` 0.1), 9,000 train. Fashion-MNIST: the 900-image sprite, 90 held out. "
           "PSNR/SSIM: mean over held-out items of one gradient-origin pass (the autoencoder: "
           "its encoder), no refinement; train PSNR over the first 256 training items. Time/step: "
           "a training step at batch 64, one thread, over the paper's step at the same latent "
           "size, timed in the same process.\n",
           "| data | config | hidden | latent values | steps | batch | lr | held-out PSNR | "
           "held-out SSIM | train PSNR | time/step vs paper |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ratio = f"{r['time_ratio']:.2f}x" if "time_ratio" in r else "-"
        out.append(f"| {r['data']} | {r['label']} | {r['hidden']} | {r['latent']} | {r['steps']} | "
                   f"{r['batch']} | {r['lr']:g} | {r['val_psnr']:.2f} dB | {r['val_ssim']:.3f} | "
                   f"{r['train_psnr']:.2f} dB | {ratio} |")
    out.append("")
    for data, steps, batch in sorted({(r["data"], r["steps"], r["batch"]) for r in records}):
        n = sum((r["data"], r["steps"], r["batch"]) == (data, steps, batch) for r in records)
        out.append(f"- {data}: {n} runs at {steps} steps, batch {batch}")
    cmds = sorted({command(r) for r in records})
    out += ["", "Commands (one per run; `--report` rebuilt this file):", "", "```"] + cmds + ["```", ""]
    return "\n".join(out)


def command(r: dict) -> str:
    """The invocation that makes (or, with --force, re-makes) the run of record r."""
    return (f"python benchmarks/quality.py --data {r['data']} --configs {r['config']} --latents "
            f"{r['latent']} --steps {r['steps']} --batch-size {r['batch']} --hidden {r['hidden']} "
            f"--lr {r['lr']:g}" + ("" if "time_ratio" in r else " --no-timing"))


def _label(r: dict) -> str:
    h = "" if r["hidden"] == 256 else f", h{r['hidden']}"
    return f"{r['config']} L{r['latent']}{h}"


def plot_curves(records: list[dict], path: Path) -> None:
    plt = _pyplot()
    datas = sorted({r["data"] for r in records})
    fig, axes = plt.subplots(1, len(datas), figsize=(7 * len(datas), 5), squeeze=False)
    for ax, data in zip(axes[0], datas):
        runs = [r for r in records if r["data"] == data]
        longest = {}  # the longest run of each (config, latent, hidden) gives the curve
        for r in runs:
            k = _label(r)
            if k not in longest or r["steps"] > longest[k]["steps"]:
                longest[k] = r
        for k, r in sorted(longest.items()):
            line, = ax.plot(r["curve"]["step"], _smooth(r["curve"]["psnr"]), lw=1, label=k)
            held = sorted((x["steps"], x["val_psnr"]) for x in runs if _label(x) == k)
            ax.plot(*zip(*held), "o", color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("training steps")
        ax.set_ylabel("PSNR (dB), one encoding pass")
        ax.set_title(f"{data}: lines = training batches (smoothed), dots = held-out")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _smooth(xs: list[float], k: int = 5) -> np.ndarray:
    x = np.asarray(xs, dtype=np.float64)
    if len(x) < k:
        return x
    return np.convolve(np.pad(x, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, "valid")


def picture_grid(records: list[dict], path: Path) -> None:
    """Rows: held-out items; columns: truth, then each model of the largest step count."""
    steps = max(r["steps"] for r in records)
    runs = sorted([r for r in records if r["steps"] == steps],
                  key=lambda r: (r["latent"], list(CONFIGS).index(r["config"]), r["hidden"]))
    items = [shown(r) for r in runs]
    truth, recons = items[0][:SHOWN], [s[SHOWN:] for s in items]
    cells = np.stack([truth, *recons], axis=1)  # [items, 1 + models, h, w, C]
    if cells.shape[-1] == 1:
        cells = np.repeat(cells, 3, axis=-1)
    f = max(1, 96 // cells.shape[2])
    img = image_grid(upscale_nearest(cells.reshape(-1, *cells.shape[2:]), f), cols=cells.shape[1])
    names = ["truth"] + [f"{_label(r)}\n{r['val_psnr']:.1f} dB" for r in runs]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.3 * len(names), 1.3 * SHOWN + 0.8))
    ax.imshow(img, interpolation="nearest")
    step = img.shape[1] / len(names)
    ax.set_xticks([step * (i + 0.5) for i in range(len(names))], names, fontsize=7)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_title(f"{records[0]['data']}, held-out items, one encoding pass, {steps} steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pyplot():
    import matplotlib  # benchmark-side dependency (the `bench` extra), not needed by the package

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def main() -> None:
    p = parser(__doc__, steps=3000, seed=0, threads=1)
    p.add_argument("--data", default="cifar", help="cifar | fashion | a .npy [N, H, W(, C)]")
    p.add_argument("--configs", default="paper,ae", help="comma-separated from: " + ",".join(CONFIGS))
    p.add_argument("--latents", default="256", help="latent values per image, e.g. 64,256,1024")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256, help="decoder width (the paper: 256)")
    p.add_argument("--lr", type=float, default=1e-4, help="the paper's Adam step size")
    p.add_argument("--size", type=int, default=32, help="image side for a .npy of your own")
    p.add_argument("--time-batch", type=int, default=64)
    p.add_argument("--no-timing", action="store_true", help="skip the time-per-step ratio")
    p.add_argument("--work", type=Path, help="keep run folders here (default: a temporary folder); "
                   "a finished run found there is scored, not trained again")
    p.add_argument("--force", action="store_true", help="re-run configurations already recorded")
    p.add_argument("--report", action="store_true", help="only rebuild the table and figures")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = [c for c in args.configs.split(",") if c]
    if unknown := sorted(set(names) - set(CONFIGS)):
        p.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    latents = [int(x) for x in args.latents.split(",") if x]
    RUNS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for latent in [] if args.report else latents:
            for name in names:
                path = RUNS / f"{run_key(name, latent, args)}.json"
                if path.exists() and not args.force:
                    print(f"{path.name}: recorded, skipped", flush=True)
                    continue
                try:
                    row = measure(name, latent, args, work)
                    row.update({} if args.no_timing else time_ratio(name, latent, args))
                except (KeyError, ValueError) as e:
                    print(f"skipped: {e}", flush=True)
                    continue
                write_json(path, row)
                print(f"{args.data} {name} L{latent} h{args.hidden}: held-out {row['val_psnr']:.2f} dB "
                      f"SSIM {row['val_ssim']:.3f}, train {row['train_psnr']:.2f} dB, "
                      f"x{row.get('time_ratio', float('nan')):.2f} time ({row['train_seconds']:.0f} s)",
                      flush=True)
    report(load_records())
    print((RESULTS / "quality.md").read_text())


if __name__ == "__main__":
    main()
