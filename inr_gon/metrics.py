"""Figures of merit: PSNR and SSIM for images (Chamfer and IoU for shapes below)."""

from __future__ import annotations

import numpy as np
import torch

# ---------------------------------------------------------------------------------------------
# Images: float arrays in [0, 1], channels last, [B, H, W, C] (or one image [H, W, C]).
# ---------------------------------------------------------------------------------------------


def mse(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image mean squared error: [B, H, W, C] x2 -> [B] (float64)."""
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return np.mean(diff.reshape(diff.shape[0], -1) ** 2, axis=1)


def psnr_from_mse(err: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
    """PSNR in dB for a peak of 1 from mean squared errors (a float, an array or a tensor, kept
    as it is). Capped at 120 dB (an exact match) so means stay finite."""
    if isinstance(err, torch.Tensor):
        return -10.0 * torch.log10(err.clamp_min(1e-12))
    return -10.0 * np.log10(np.maximum(err, 1e-12))


def psnr(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB for a peak of 1: [B, H, W, C] x2 -> [B]."""
    return psnr_from_mse(mse(pred, truth))


def ssim(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image SSIM by scikit-image with its defaults (uniform 7x7 window, data range 1,
    channels averaged): [B, H, W, C] x2 -> [B]. Images under 7 pixels a side use the largest
    odd window that fits; under 3 pixels SSIM is undefined and reported as NaN."""
    from skimage.metrics import structural_similarity

    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    side = min(truth.shape[1:3])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return np.full(truth.shape[0], np.nan)
    return np.array([structural_similarity(p, t, data_range=1.0, channel_axis=-1, win_size=win)
                     for p, t in zip(pred, truth)])


def image_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """{"mse", "psnr", "ssim"}: per-image arrays [B]."""
    return {"mse": mse(pred, truth), "psnr": psnr(pred, truth), "ssim": ssim(pred, truth)}


# ---------------------------------------------------------------------------------------------
# Shapes (SDF runs): appended by the SDF work.
# ---------------------------------------------------------------------------------------------
