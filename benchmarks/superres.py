"""Super-resolution against the true high-resolution images (issue 13).

Each 32 x 32 truth is box-downsampled by 4 (8 x 8) or 2 (16 x 16); every method sees only that
input and is scored (PSNR, SSIM) against the truth:
- nearest: pixel replication;
- bicubic: skimage.transform.resize(order=3, mode="edge", anti_aliasing=False), clipped;
- inr-gon one pass: Run.encode of the small input (the box-average observation model), then
  rendered at 32 x 32;  inr-gon + refine: K Adam steps (lr 1e-3) on the latent against the
  observation;
- SIREN per image: a SIREN (3 x 64, w0 30) fitted to the small image's pixel centres for a
  fixed number of Adam steps (lr 1e-3) and rendered at the truth's pixel centres.
Data: CIFAR-10 items the run held out (its own split: 1,000 of the 10k with --val-fraction 0.1,
seed 0), and 32 x 32 crops of the photographs in builtin:skimage (2 crops of 128 x 128 per
photo at fixed random places, area-downsampled to 32 x 32), never seen in training.

    OMP_NUM_THREADS=1 python benchmarks/superres.py RUN [RUN ...] [--n 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, machine, table, write_result

from inr_gon.datasets.builtin import load_builtin
from inr_gon.inference.fit import fit_images
from inr_gon.inference.run import load_run
from inr_gon.io import write_png
from inr_gon.metrics import image_scores
from inr_gon.models.render import box_downsample, grid
from inr_gon.plots import image_grid, upscale_bicubic, upscale_nearest
from inr_gon.training.batches import split_indices

CIFAR = "/work/shared/data/cifar10_train10k_images.npy"
SIDE = 32


def cifar_held_out(run, n: int) -> np.ndarray:
    images = np.load(CIFAR).astype(np.float32) / 255.0
    _, val = split_indices(len(images), run.cfg.dataset.val_fraction, run.cfg.train.seed)
    return images[val[:n].numpy()]


def photo_crops(per_photo: int = 2, crop: int = 128, seed: int = 0) -> np.ndarray:
    """Crops at fixed random places of each builtin:skimage photograph, area-resized to 32."""
    rng, out = np.random.default_rng(seed), []
    full = load_builtin("builtin:skimage", (512, 512), None).images  # [P, 512, 512, 3]
    for img in full:
        for _ in range(per_photo):
            y, x = rng.integers(0, 512 - crop, 2)
            patch = torch.tensor(img[None, y:y + crop, x:x + crop])
            out.append(box_downsample(patch, crop // SIDE)[0].numpy())
    return np.stack(out)


def siren_per_image(small: np.ndarray, side: int, steps: int, hidden: int = 64,
                    w0: float = 30.0, seed: int = 0) -> np.ndarray:
    """B independent SIRENs (3 sine layers of `hidden`), one per image, trained together as
    batched matrices: each image's loss is its own (summed), Adam is per weight."""
    torch.manual_seed(seed)
    b, h, w, c = small.shape
    dims = [2, hidden, hidden, hidden, c]
    ws, bs = [], []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        bound = 1 / fan_in if i == 0 else math.sqrt(6 / fan_in) / w0
        ws.append(torch.empty(b, fan_in, fan_out).uniform_(-bound, bound).requires_grad_(True))
        bs.append(torch.empty(b, 1, fan_out).uniform_(-bound, bound).requires_grad_(True))

    def forward(coords: torch.Tensor) -> torch.Tensor:  # coords [N, 2] -> [B, N, C]
        x = coords.expand(b, -1, -1)
        for i, (wt, bias) in enumerate(zip(ws, bs)):
            x = torch.baddbmm(bias, x, wt)
            x = torch.sin(w0 * x) if i < len(ws) - 1 else x
        return x

    target = torch.tensor(small).reshape(b, h * w, c)
    coords = grid(h, w)
    opt = torch.optim.Adam(ws + bs, lr=1e-3)
    for _ in range(steps):
        loss = (forward(coords) - target).pow(2).mean((1, 2)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return forward(grid(side, side)).clamp(0, 1).reshape(b, side, side, c).numpy()


def methods(run, small: np.ndarray, side: int, refine_steps: int, refine_lr: float,
            siren_steps: int) -> dict:
    """name -> (images [B, side, side, C], seconds)."""
    out = {}
    t = time.perf_counter()
    out["nearest"] = (upscale_nearest(small, side // small.shape[1]), time.perf_counter() - t)
    t = time.perf_counter()
    out["bicubic"] = (upscale_bicubic(small, side, side), time.perf_counter() - t)
    t = time.perf_counter()
    out["inr-gon one pass"] = (run.render(run.encode(small), (side, side)),
                               time.perf_counter() - t)
    if refine_steps:
        t = time.perf_counter()
        res = fit_images(run, small, [str(i) for i in range(len(small))], refine_steps,
                         refine_lr)
        out[f"inr-gon + {refine_steps} refine"] = (run.render(res.z, (side, side)),
                                                   time.perf_counter() - t)
    if siren_steps:
        t = time.perf_counter()
        out[f"SIREN per image ({siren_steps} steps)"] = (
            siren_per_image(small, side, siren_steps), time.perf_counter() - t)
    return out


def picture(path: Path, truth: np.ndarray, small: np.ndarray, outs: dict, rows: int = 8) -> None:
    """Rows: truth | input (nearest) | bicubic | inr-gon one pass (| refined)."""
    cols = [truth, upscale_nearest(small, truth.shape[1] // small.shape[1]),
            outs["bicubic"][0], outs["inr-gon one pass"][0]]
    cols += [v[0] for k, v in outs.items() if "refine" in k]
    tiles = np.stack([c[i] for i in range(rows) for c in cols])
    big = upscale_nearest(image_grid(tiles, cols=len(cols))[None], 3)[0]
    write_png(path, big)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run folders (32 x 32 image runs on CIFAR-10)")
    p.add_argument("--n", type=int, default=1000, help="held-out CIFAR-10 items")
    p.add_argument("--refine-steps", type=int, default=50)
    p.add_argument("--refine-lr", type=float, default=1e-3,
                   help="Adam on the latent (1e-2, fit's default, overshoots GN latents)")
    p.add_argument("--siren-steps", type=int, default=300)
    p.add_argument("--name", default="superres")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    record, md = {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                  "results": []}, []
    photos = photo_crops()
    for i, run_dir in enumerate(args.runs):
        run = load_run(run_dir)
        sets = {"cifar10 held out": cifar_held_out(run, args.n), "skimage photo crops": photos}
        for data, truth in sets.items():
            for factor in (4, 2):
                small = box_downsample(torch.tensor(truth), factor).numpy()
                outs = methods(run, small, SIDE, args.refine_steps, args.refine_lr,
                               args.siren_steps if i == 0 else 0)  # baselines: once
                rows = []
                for name, (pred, secs) in outs.items():
                    s = image_scores(pred, truth)
                    rows.append([name, f"{s['psnr'].mean():.2f}", f"{s['ssim'].mean():.3f}",
                                 f"{secs:.1f}"])
                    record["results"].append({
                        "run": str(run_dir), "observe_scales": run.cfg.train.observe_scales,
                        "data": data, "items": len(truth), "factor": factor,
                        "input": f"{SIDE // factor}x{SIDE // factor}", "method": name,
                        "psnr": float(s["psnr"].mean()), "ssim": float(np.nanmean(s["ssim"])),
                        "seconds": secs})
                title = (f"{data}, {factor}x ({SIDE // factor} -> {SIDE}), {len(truth)} items, "
                         f"run {Path(run_dir).name} (--observe-scales "
                         f"{run.cfg.train.observe_scales})")
                text = table(["method", "PSNR dB", "SSIM", "seconds"], rows)
                print(f"\n{title}\n{text}", flush=True)
                md.append(f"### {title}\n\n```\n{text}\n```\n")
                if factor == 4:
                    tag = f"{args.name}_{data.split()[0]}_4x.png"
                    picture(RESULTS / tag, truth, small, outs)
    write_result(args.name, record)
    (RESULTS / f"{args.name}.md").write_text(
        f"# Super-resolution\n\n`{record['command']}`\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
