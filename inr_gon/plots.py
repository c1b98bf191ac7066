"""Pictures a run writes: image grids, preview strips and the loss curve (no plotting library
needed)."""

from __future__ import annotations

import numpy as np
from skimage.draw import line_aa
from skimage.transform import resize


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


def upscale_nearest(images: np.ndarray, factor: int) -> np.ndarray:
    """[B, H, W, C] -> [B, H*f, W*f, C], to show low-resolution pixels beside renders."""
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def upscale_bicubic(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """The baseline of super-resolution: bicubic interpolation of [B, h, w, C] to height x
    width (skimage.transform.resize, order 3, edge padding, no anti-aliasing), clipped to [0, 1]."""
    return np.stack([resize(im, (height, width), order=3, mode="edge", anti_aliasing=False)
                     for im in images]).clip(0, 1).astype(np.float32)


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


def curve_image(steps: list[int], series: dict[str, list[float]], log_y: bool = True,
                size: tuple[int, int] = (360, 640)) -> np.ndarray:
    """Line plot of each series against steps on a white canvas with a light grid: RGB [H, W, 3].
    Colours in order: blue, orange, green, red."""
    h, w = size
    img = np.ones((h, w, 3), dtype=np.float32)
    margin = 20
    img[margin:h - margin:((h - 2 * margin) // 8) or 1, margin:w - margin] = 0.88
    img[margin:h - margin, margin:w - margin:((w - 2 * margin) // 10) or 1] = 0.88
    colours = np.array([[0.12, 0.47, 0.71], [1.0, 0.5, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16]])
    ys_all = [np.asarray(v, dtype=np.float64) for v in series.values()]
    ys_all = [np.log10(np.maximum(v, 1e-12)) if log_y else v for v in ys_all]
    finite = np.concatenate([v[np.isfinite(v)] for v in ys_all] or [np.zeros(1)])
    if len(steps) < 2 or finite.size == 0:
        return img
    lo, hi = float(finite.min()), float(finite.max())
    hi = hi if hi > lo else lo + 1.0
    x = margin + (np.asarray(steps) - steps[0]) / max(steps[-1] - steps[0], 1) * (w - 2 * margin - 1)
    for colour, ys in zip(colours, ys_all):
        y = h - margin - 1 - (np.nan_to_num(ys, nan=lo) - lo) / (hi - lo) * (h - 2 * margin - 1)
        for x0, y0, x1, y1 in zip(x[:-1], y[:-1], x[1:], y[1:]):
            rr, cc, val = line_aa(int(y0), int(x0), int(y1), int(x1))
            keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
            rr, cc, val = rr[keep], cc[keep], val[keep, None]
            img[rr, cc] = img[rr, cc] * (1 - val) + colour * val
    return img
