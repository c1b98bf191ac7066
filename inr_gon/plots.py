"""Pictures a run writes: image grids and preview strips (numpy), and the training curves
(matplotlib figures with axes, labels and a legend)."""

from __future__ import annotations

import io
import os

import numpy as np
from skimage.transform import resize

from inr_gon.io import atomic_write


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """[B, H, W, C] -> one [rows*H, cols*W, C] picture with white gutters."""
    b, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(b)))
    rows = int(np.ceil(b / cols))
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.float32)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = img
    return canvas


def upscale_nearest(images: np.ndarray, factor: float) -> np.ndarray:
    """[B, H, W, C] -> [B, round(H*f), round(W*f), C] by pixel replication (any factor: each
    output pixel takes the input pixel its centre falls in), to show low-resolution pixels
    beside renders and as the plainest super-resolution baseline."""
    h, w = images.shape[1:3]
    rows = ((np.arange(round(h * factor)) + 0.5) * h / round(h * factor)).astype(int)
    cols = ((np.arange(round(w * factor)) + 0.5) * w / round(w * factor)).astype(int)
    return images[:, rows][:, :, cols]


def upscale_bicubic(images: np.ndarray, height: int, width: int, clip: bool = True) -> np.ndarray:
    """The baseline of super-resolution: bicubic interpolation of [B, h, w, C] to height x
    width (skimage.transform.resize, order 3, edge padding, no anti-aliasing), clipped to [0, 1]
    (clip False: signed values, e.g. residuals, kept)."""
    out = np.stack([resize(im, (height, width), order=3, mode="edge", anti_aliasing=False)
                    for im in images]).astype(np.float32)
    return out.clip(0, 1) if clip else out


def preview_strip(truth: np.ndarray, recon: np.ndarray, superres: np.ndarray,
                  bicubic: np.ndarray | None = None) -> np.ndarray:
    """Rows of (truth | reconstruction | super-resolved render [| bicubic of the truth,
    the model's input]).
    [B, h, w, C] x2, [B, H, W, C] (x2)."""
    f = superres.shape[1] // truth.shape[1]
    cols = [upscale_nearest(truth, f), upscale_nearest(recon, f), superres]
    cols += [] if bicubic is None else [bicubic]
    cells = np.stack(cols, axis=1)
    return image_grid(cells.reshape(-1, *superres.shape[1:]), cols=len(cols))


def line_figure(steps: list[int], series: dict[str, list[float]], ylabel: str,
                log_y: bool = True, title: str = "", xlabel: str = "step"):
    """A matplotlib Figure: each series against steps, labelled axes, a legend."""
    from matplotlib.figure import Figure  # lazily: ~0.3 s to import, only plots need it

    fig = Figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, ys in series.items():
        ax.plot(steps, ys, label=name, linewidth=1.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if log_y:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best")
    return fig


def training_figure(rows: list[dict]):
    """The run's curve from metrics.jsonl records: loss (log scale) and, on a second axis,
    the training PSNR of each logged step and the held-out PSNR of evaluations."""
    logged = [r for r in rows if "loss" in r]
    fig = line_figure([r["step"] for r in logged], {"loss": [r["loss"] for r in logged]},
                      "loss (log scale)", title="training curve")
    ax = fig.axes[0]
    psnr = [r for r in logged if isinstance(r.get("psnr"), (int, float))]
    evals = [r for r in rows if isinstance(r.get("val_psnr"), (int, float))]
    if psnr or evals:
        right = ax.twinx()
        right.set_ylabel("PSNR (dB)")
        if psnr:
            right.plot([r["step"] for r in psnr], [r["psnr"] for r in psnr], color="tab:orange",
                       linewidth=1.0, label="train PSNR (batch)")
        if evals:
            right.plot([r["step"] for r in evals], [r["val_psnr"] for r in evals], "o",
                       color="tab:green", label="held-out PSNR")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    return fig


def save_figure(fig, path: str | os.PathLike) -> None:
    """PNG through matplotlib's Agg canvas (no display needed), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazily, as line_figure

    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    atomic_write(path, buf.getvalue())
