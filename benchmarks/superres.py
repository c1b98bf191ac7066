"""Super-resolution against the true high-resolution images (issue 13).

Each truth is area-averaged by the factor (32 x 32 by 4: 8 x 8, by 2: 16 x 16; a truth whose
side the factor does not divide is first cropped to its centre, 32 -> 30 at 3x; fractional
factors on the Kodak crops, 96 -> 30 at 3.2x and 96 -> 40 at 2.4x); every method sees only
that input and is scored (PSNR, SSIM) against the truth:
- nearest: pixel replication;
- bicubic: skimage.transform.resize(order=3, mode="edge", anti_aliasing=False), clipped;
- inr-gon one pass: Run.encode of the small input (the box-average observation model), then
  rendered at 32 x 32;  inr-gon + refine: K Adam steps (lr 1e-3) on the latent against the
  observation;
- SIREN per image: a SIREN (3 x 64, w0 30) fitted to the small image's pixel centres for a
  fixed number of Adam steps (lr 1e-3) and rendered at the truth's pixel centres.
- lanczos: PIL's Lanczos (a = 3) per channel.
- back-projection: iterative back-projection (Irani & Peleg 1991) from bicubic, x <- x +
  bicubic(y - box(x)), BACK_PROJECTIONS times: the classical way to make an upscale agree
  with its input under the box-average observation, the one thing the local model's step
  enforces by construction; what a learned model adds beyond that is its margin over this row.
Data: CIFAR-10 items the run held out (its own split: 1,000 of the 10k with --val-fraction 0.1,
seed 0); 32 x 32 crops of the photographs in builtin:skimage (2 crops of 128 x 128 per photo
at fixed random places, area-downsampled to 32 x 32); and 96 x 96 crops of the 3 held-out
lossless Kodak photographs (16 per photo at fixed random places, full resolution: x2, x2.4,
x3, x3.2, x4 from 48, 40, 32, 30, 24); and the 512 x 512 centres of those 3 photos (x4 and x2
from 128 and 256: a local run tiles them, as `render --scale` tiles a whole photo). The Kodak split: the 12
files sorted by name, permuted by numpy.random.default_rng(0); the first 3 are held out
(kodim14, kodim04, kodim11), the other 9 may train a run (`kodak_split`). Protocol: every
output rounded to 8 bits, a border of `factor` pixels (rounded up) cropped (the usual SR
convention), PSNR and SSIM on RGB in [0, 1].
A `local` run (--preset superres) is encoded for the factor and rendered by its own decoder;
refinement and the per-image SIREN apply to gon runs only; a local run's refinement is K more
chord Gauss-Newton steps than it trained with (`--chord-steps`), and `--self-ensemble` adds
that row averaged over the 8 flips and quarter turns of the input (measured: +0.01 dB for 8x
the time, so the package has no such option; docs/superres.md).

    OMP_NUM_THREADS=1 python benchmarks/superres.py RUN [RUN ...] [--n 1000] [--self-ensemble]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inr_gon.inference.fit import fit_images
from inr_gon.inference.superres import upscale_photo
from inr_gon.io import write_png
from inr_gon.limits import LOCAL_DIRECT_SIDE
from inr_gon.metrics import image_scores
from inr_gon.models.local_geometry import area_downsample
from inr_gon.models.render import grid
from inr_gon.plots import image_grid, upscale_bicubic, upscale_nearest
from inr_gon.run import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import RESULTS, machine, parser, table, write_result  # noqa: E402
from superres_data import (  # noqa: E402
    KODAK_CROP,
    cifar_held_out,
    kodak_centres,
    kodak_crops,
    photo_crops,
    views,
)


def lanczos(images: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    out = [np.stack([np.asarray(Image.fromarray(im[..., c]).resize((side, side), Image.LANCZOS))
                     for c in range(im.shape[-1])], -1) for im in images]
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


def scored(pred: np.ndarray, truth: np.ndarray, factor: float) -> dict:
    """The protocol: 8-bit rounding, a border of `factor` pixels (rounded up) cropped."""
    pred = np.round(np.clip(pred, 0, 1) * 255) / 255
    b = math.ceil(factor)
    return image_scores(pred[:, b:-b, b:-b].astype(np.float32), truth[:, b:-b, b:-b])


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


BACK_PROJECTIONS = 5  # flat after 3 (300 held-out CIFAR-10 4x: +0.29 dB after 1, +0.32 after 3 and 5)


def back_projection(small: np.ndarray, side: int, iterations: int = BACK_PROJECTIONS) -> np.ndarray:
    """small [B, h, w, C] -> [B, side, side, C]: bicubic, then x += bicubic(y - box(x))."""
    x = upscale_bicubic(small, side, side, clip=False)
    for _ in range(iterations):
        seen = area_downsample(torch.tensor(x), small.shape[1:3]).numpy()
        x = x + upscale_bicubic(small - seen, side, side, clip=False)  # residuals are signed
    return x.clip(0, 1)


def upscale(run, small: np.ndarray, side: int) -> np.ndarray:
    """Run.upscale to side x side, or for a local run's inputs larger than one dense solve,
    the tiled photo path (`render --scale`) image by image."""
    if run.cfg.net.model == "local" and max(small.shape[1:3]) > LOCAL_DIRECT_SIDE:
        return np.stack([upscale_photo(run, im, (side, side)) for im in small])
    return run.upscale(small, side / small.shape[1])


def self_ensemble(up, images: np.ndarray) -> np.ndarray:
    """Geometric self-ensemble (Timofte et al. 2016; EDSR+): up, [B, h, w, C] -> [B, H, W, C],
    on the 8 flips and quarter turns of images, each output turned back, the 8 averaged."""
    acc = None
    for turns in range(4):
        for flip in (False, True):
            x = np.rot90(images, turns, axes=(1, 2))
            y = up(np.ascontiguousarray(x[:, :, ::-1] if flip else x))
            y = np.rot90(y[:, :, ::-1] if flip else y, -turns, axes=(1, 2))
            acc = y.astype(np.float32) if acc is None else acc + y
    return acc / 8


def methods(run, small: np.ndarray, side: int, refine_steps: int, refine_lr: float,
            siren_steps: int, chord_steps: int = 0, ensemble: bool = False) -> dict:
    """name -> (images [B, side, side, C], seconds). ensemble: a local run's row with its chord
    steps and the geometric self-ensemble too (`self_ensemble`)."""
    out = {}
    t = time.perf_counter()
    out["nearest"] = (upscale_nearest(small, side / small.shape[1]), time.perf_counter() - t)
    t = time.perf_counter()
    out["bicubic"] = (upscale_bicubic(small, side, side), time.perf_counter() - t)
    t = time.perf_counter()
    out["lanczos"] = (lanczos(small, side), time.perf_counter() - t)
    t = time.perf_counter()
    out["back-projection"] = (back_projection(small, side), time.perf_counter() - t)
    t = time.perf_counter()
    out["inr-gon one pass"] = (upscale(run, small, side), time.perf_counter() - t)
    local = run.cfg.net.model == "local"
    if chord_steps and local:
        trained = run.model.steps
        run.model.steps = trained + chord_steps
        t = time.perf_counter()
        out[f"inr-gon + {chord_steps} chord steps"] = (upscale(run, small, side),
                                                       time.perf_counter() - t)
        if ensemble:
            t = time.perf_counter()
            up = self_ensemble(lambda x: upscale(run, x, side), small)
            out[f"inr-gon + {chord_steps} chord steps, x8 self-ensemble"] = (
                np.clip(up, 0, 1), time.perf_counter() - t)
        run.model.steps = trained
    if refine_steps and not local:
        t = time.perf_counter()
        res = fit_images(run, small, [str(i) for i in range(len(small))], refine_steps,
                         refine_lr)
        out[f"inr-gon + {refine_steps} refine"] = (run.render(res.z, (side, side)),
                                                   time.perf_counter() - t)
    if siren_steps and not local:
        t = time.perf_counter()
        out[f"SIREN per image ({siren_steps} steps)"] = (
            siren_per_image(small, side, siren_steps), time.perf_counter() - t)
    return out


def picture(path: Path, truth: np.ndarray, small: np.ndarray, outs: dict, rows: int = 8) -> None:
    """Rows: truth | input (nearest) | bicubic | inr-gon one pass (| refined)."""
    cols = [truth, upscale_nearest(small, truth.shape[1] / small.shape[1]),
            outs["bicubic"][0], outs["inr-gon one pass"][0]]
    cols += [v[0] for k, v in outs.items() if "refine" in k or "chord" in k]
    tiles = np.stack([c[i] for i in range(rows) for c in cols])
    big = upscale_nearest(image_grid(tiles, cols=len(cols))[None], 3)[0]
    write_png(path, big)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("runs", nargs="+", help="run folders (32 x 32 image runs on CIFAR-10)")
    p.add_argument("--n", type=int, default=1000, help="held-out CIFAR-10 items")
    p.add_argument("--refine-steps", type=int, default=50)
    p.add_argument("--refine-lr", type=float, default=1e-3,
                   help="Adam on the latent (1e-2, fit's default, overshoots GN latents)")
    p.add_argument("--siren-steps", type=int, default=300)
    p.add_argument("--chord-steps", type=int, default=2,
                   help="local runs: also render with this many more chord Gauss-Newton steps")
    p.add_argument("--self-ensemble", action="store_true",
                   help="local runs: also the chord-step row averaged over 8 flips and turns")
    p.add_argument("--sets", default="cifar10,skimage,kodak,kodak512", help="which data sets")
    p.add_argument("--name", default="superres")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    record, md = {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                  "results": []}, []
    photos, kodak = photo_crops(), kodak_crops()
    centres = kodak_centres() if "kodak512" in args.sets.split(",") else None
    for i, run_dir in enumerate(args.runs):
        run = load_run(run_dir)
        sets = {"cifar10 held out": (cifar_held_out(run, args.n), (4, 3, 2)),
                "skimage photo crops": (photos, (4, 2)),
                "kodak photo crops": (kodak, (4, 3.2, 3, 2.4, 2)),
                "kodak512 centres, tiled": (centres, (4, 2))}
        for data, (all_truth, factors) in sets.items():
            if data.split()[0] not in args.sets.split(","):
                continue
            if all_truth is centres and run.cfg.net.model != "local":
                continue  # tiled photos are a local run's path only
            for factor in factors:
                truth_f, small = views(all_truth, factor)
                side = truth_f.shape[1]
                outs = methods(run, small, side, args.refine_steps, args.refine_lr,
                               args.siren_steps if i == 0 else 0,  # baselines: once
                               args.chord_steps, args.self_ensemble)
                rows = []
                for name, (pred, secs) in outs.items():
                    s = scored(pred, truth_f, factor)
                    rows.append([name, f"{s['psnr'].mean():.2f}", f"{s['ssim'].mean():.3f}",
                                 f"{secs:.1f}"])
                    record["results"].append({
                        "run": str(run_dir), "model": run.cfg.net.model,
                        "observe_scales": run.cfg.train.observe_scales,
                        "data": data, "items": len(truth_f), "factor": factor,
                        "input": f"{small.shape[2]}x{small.shape[1]}", "method": name,
                        "psnr": float(s["psnr"].mean()), "ssim": float(np.nanmean(s["ssim"])),
                        "seconds": secs})
                title = (f"{data}, {factor:g}x ({small.shape[1]} -> {side}), {len(truth_f)} items, "
                         f"run {Path(run_dir).name} ({run.cfg.net.model}, --observe-scales "
                         f"{run.cfg.train.observe_scales})")
                text = table(["method", "PSNR dB", "SSIM", "seconds"], rows)
                print(f"\n{title}\n{text}", flush=True)
                md.append(f"### {title}\n\n```\n{text}\n```\n")
                shown = factor == 4 or factor != int(factor)  # and every fractional factor
                if shown and side <= KODAK_CROP:  # a 512 px row would be 7,680 px wide
                    tag = f"{args.name}_{data.split()[0]}_{factor:g}x.png"
                    picture(RESULTS / tag, truth_f, small, outs)
    write_result(args.name, record)
    (RESULTS / f"{args.name}.md").write_text(
        f"# Super-resolution\n\n`{record['command']}`\n\n" + "\n".join(md))


if __name__ == "__main__":
    main()
