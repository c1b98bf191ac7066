"""Sample quality of image runs (issue 22 item 5): prior draws scored against held-out images.

    python benchmarks/sample_quality.py --runs vae=RUN,det=RUN --name sample_quality

FID needs an Inception network, which is not available offline. Two fixed feature spaces stand
in, each scored with FID's formula and with k-NN precision and recall:
- pixels: each image box-averaged to 8 x 8 (colour and layout, 8 * 8 * C values);
- HOG: histograms of oriented gradients of the grey image (skimage.feature.hog: 9 orientations,
  cells of a quarter side, 2 x 2 blocks; edges and shapes).
Fréchet distance: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2) of Gaussians fitted to the two
feature sets. Precision and recall (Kynkäänniemi et al. 2019, k = 3): the share of samples
inside some real item's ball of its 3rd-nearest-real-neighbour radius (fidelity), and the share
of real items inside the samples' balls (diversity). Both sides have the same number of items:
the Fréchet distance is biased by that number, so only rows of one table compare.

Rows, all against a random --n items of the first run's held-out split (load_split "val"; every
run must share its data and split):
- each run's draws from `inr-gon sample`'s prior (auto: the model's N(0, I) for a variational
  run, a Gaussian fitted to 1,024 training latents otherwise; `name=RUN:fitted` picks one);
- train images (as many, drawn at random): real against real, the floor at this many items;
- a Gaussian fitted to the training pixels: the plainest generative model. In the pixel space
  it matches the means and covariances by construction, so only HOG and precision tell it apart.
Writes results/<name>.json, .md and .png (the first 16 items of each row, one row each).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.feature import hog

from inr_gon.inference.evaluate import load_split
from inr_gon.inference.sample import sample_latents
from inr_gon.io import write_png
from inr_gon.plots import image_grid, upscale_nearest
from inr_gon.run import load_run
from inr_gon.training.train import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import RESULTS, machine, parser, table, write_result  # noqa: E402

K = 3  # neighbours of the precision/recall radius (the paper's choice)
SHOWN = 16  # items of each row in the picture


def pixel_features(images: np.ndarray) -> np.ndarray:
    """[B, H, W, C] in [0, 1] -> [B, 64 C]: box means on an 8 x 8 grid (H, W multiples of 8
    keep whole boxes; other sizes drop the remainder rows and columns)."""
    b, h, w, c = images.shape
    hb, wb = h // 8, w // 8
    boxes = images[:, :8 * hb, :8 * wb].reshape(b, 8, hb, 8, wb, c)
    return boxes.mean((2, 4)).reshape(b, -1)


def hog_features(images: np.ndarray) -> np.ndarray:
    """[B, H, W, C] in [0, 1] -> [B, F]: HOG of the grey image, cells of a quarter side."""
    grey = images[..., 0] if images.shape[-1] == 1 else rgb2gray(images)
    cell = (max(grey.shape[1] // 4, 2), max(grey.shape[2] // 4, 2))
    return np.stack([hog(g, orientations=9, pixels_per_cell=cell, cells_per_block=(2, 2))
                     for g in grey])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID's formula on features a [N, F], b [M, F]. Tr (S_a S_b)^1/2 as the sum of the square
    roots of the eigenvalues of S_a^1/2 S_b S_a^1/2 (symmetric PSD: eigh, no complex sqrtm)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(w.clip(0))) @ v.T
    cross = np.sqrt(np.linalg.eigvalsh(root_a @ s_b @ root_a).clip(0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross)


def coverage(ref: np.ndarray, query: np.ndarray, k: int = K) -> float:
    """Share of query rows [M, F] inside some ref row's ball [N, F] whose radius is the distance
    to that ref row's k-th nearest other ref row."""
    r, q = torch.as_tensor(ref, dtype=torch.float64), torch.as_tensor(query, dtype=torch.float64)
    radius = torch.cdist(r, r).kthvalue(k + 1, dim=1).values  # [N]; the 1st is the row itself
    return float((torch.cdist(q, r) <= radius).any(1).double().mean())


def scores(real: np.ndarray, fake: np.ndarray) -> dict:
    """Fréchet distance, precision and recall in both feature spaces."""
    out = {}
    for space, features in (("pixels", pixel_features), ("hog", hog_features)):
        r, f = features(real), features(fake)
        out[space] = {"fd": round(frechet_distance(r, f), 4), "precision": round(coverage(r, f), 3),
                      "recall": round(coverage(f, r), 3)}
    return out


def pixel_gaussian(train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n draws [n, H, W, C] of the Gaussian fitted to the training pixels, clipped to [0, 1]."""
    x = train.reshape(len(train), -1).astype(np.float64)
    mean, cov = x.mean(0), np.cov(x, rowvar=False)
    chol = np.linalg.cholesky(cov + 1e-6 * np.trace(cov) / len(cov) * np.eye(len(cov)))
    eps = np.random.default_rng(seed).standard_normal((n, len(mean)))
    return (mean + eps @ chol.T).clip(0, 1).reshape(n, *train.shape[1:]).astype(np.float32)


def run_rows(specs: list[str], n: int, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Each run's prior draws, scored; also the held-out and (as many) train images."""
    rows, real, train, split = [], None, None, None
    for spec in specs:
        name, _, rest = spec.partition("=")
        path, _, prior = rest.partition(":")
        run = load_run(path)
        data = run.cfg.dataset.data
        here = (data, run.cfg.dataset.val_fraction, run.cfg.train.seed, run.cfg.size)
        if real is None:  # a random n of each split: the files may be ordered by class
            split, rng = here, np.random.default_rng(seed)
            real, train = (load_split(run.cfg, data, part)[1] for part in ("val", "train"))
            real = real[rng.permutation(len(real))[:n]]
        elif here != split:
            raise SystemExit(f"{name}: trained on {here}, not the first run's {split}")
        used, z = sample_latents(run, len(real), prior or "auto", seed)
        fake = run.render(z)
        rows.append({"row": name, "run": path, "prior": used, "steps": _steps(run),
                     "variational": run.cfg.net.variational, **scores(real, fake), "shown": fake[:SHOWN]})
    return rows, real, train


def _steps(run) -> int | None:
    steps = [r["step"] for r in read_metrics(run.path) if "step" in r]
    return max(steps, default=None)


def main() -> None:
    ap = parser(__doc__, seed=0)
    ap.add_argument("--runs", required=True, help="name=RUN[:prior],... (prior: auto, model, fitted)")
    ap.add_argument("--n", type=int, default=1000, help="held-out items, and draws per row")
    ap.add_argument("--name", default="sample_quality")
    args = ap.parse_args()
    rows, real, train = run_rows(args.runs.split(","), args.n, args.seed)
    pick = np.random.default_rng(args.seed).permutation(len(train))[:len(real)]
    for name, fake in (("train images (floor)", train[pick]),
                       ("Gaussian on pixels", pixel_gaussian(train, len(real), args.seed))):
        rows.append({"row": name, "prior": "-", **scores(real, fake), "shown": fake[:SHOWN]})
    header = ["row", "prior", "FD pixels", "P pixels", "R pixels", "FD HOG", "P HOG", "R HOG"]
    keys = [(space, k) for space in ("pixels", "hog") for k in ("fd", "precision", "recall")]
    lines = [[r["row"], r["prior"], *[r[s][k] for s, k in keys]] for r in rows]
    text = table(header, lines)
    print(text)
    picture = np.concatenate([image_grid(r["shown"], cols=SHOWN) for r in [{"shown": real[:SHOWN]}, *rows]])
    write_png(RESULTS / f"{args.name}.png", upscale_nearest(picture[None], 2)[0])
    record = {"command": "python benchmarks/sample_quality.py " + " ".join(sys.argv[1:]),
              "items": len(real), "k": K, "machine": machine(),
              "picture_rows": ["held out"] + [r["row"] for r in rows],
              "rows": [{k: v for k, v in r.items() if k != "shown"} for r in rows]}
    write_result(args.name, record)
    (RESULTS / f"{args.name}.md").write_text(
        f"# Sample quality: {len(real)} draws per row against {len(real)} held-out items\n\n"
        f"FD: Fréchet distance (lower is better); P, R: precision, recall (k = {K}, higher is "
        "better). Not FID: no Inception network offline (the script's docstring).\n\n"
        f"```\n{text}\n```\n\nCommand:\n\n```\n{record['command']}\n```\n")


if __name__ == "__main__":
    main()
