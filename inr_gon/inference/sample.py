"""New signals from a run's latent space: prior samples and spherical interpolation.

A variational run was trained with KL to N(0, I) (or to a grid prior, --prior-length), so its
prior is the model's. Any run can instead draw from a Gaussian (mean and full covariance) fitted
to the latents of its training items, as the paper's reference notebook does for the plain GON.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from torch import Tensor

from inr_gon.datasets import ARRAY_EXTS
from inr_gon.errors import InputError
from inr_gon.inference.inputs import load_inputs, training_items
from inr_gon.inference.latents import pick_latent
from inr_gon.io import atomic_write, write_error
from inr_gon.models.laplace import grid_prior, prior_draw

PRIORS = ("auto", "model", "fitted")
FIT_ITEMS = 1024  # training items a fitted prior is estimated from


def fitted_gaussian(run, limit: int = FIT_ITEMS) -> tuple[Tensor, Tensor]:
    """(mean [D], covariance [D, D]) of the latents of up to `limit` training items."""
    try:
        _, images = training_items(run.cfg, limit)
    except InputError as e:
        raise InputError(f"the fitted prior needs the run's training data: {e}") from None
    z = run.encode(images).double().cpu()  # [n, D]
    if z.shape[0] < 2:
        raise InputError("the fitted prior needs at least 2 training items")
    return z.mean(0), torch.cov(z.T).reshape(z.shape[1], z.shape[1])


def sample_latents(run, n: int, prior: str = "auto", seed: int = 0) -> tuple[str, Tensor]:
    """(prior used, latents [n, D]). auto: the model's prior if the run is variational, else
    the fitted Gaussian."""
    if prior not in PRIORS:
        raise InputError(f"--prior must be one of {', '.join(PRIORS)}, got '{prior}'")
    if n < 1:
        raise InputError(f"-n must be positive, got {n}")
    if not 0 <= seed < 2**63:  # torch.Generator takes 64 bits; training's --seed range
        raise InputError(f"--seed must lie in 0..2^63-1, got {seed}")
    if prior == "auto":
        prior = "model" if run.cfg.net.variational else "fitted"
    if prior == "model" and not run.cfg.net.variational:
        raise InputError("this run is not variational, so its latents have no prior: train with "
                         "--variational, or sample with --prior fitted")
    gen = torch.Generator().manual_seed(seed)
    d = run.cfg.latent_size
    eps = torch.randn(n, d, generator=gen, dtype=torch.float64)
    if prior == "model":  # N(0, I), or the grid prior's N(0, P^-1) (--prior-length)
        return prior, prior_draw(grid_prior(run.cfg), eps).float()
    mean, cov = fitted_gaussian(run)
    # Jitter keeps the Cholesky factor defined when the latents span fewer than D directions.
    jitter = 1e-6 * float(cov.diagonal().mean().clamp_min(1e-12))
    chol = torch.linalg.cholesky(cov + jitter * torch.eye(d, dtype=cov.dtype))
    return prior, (mean + eps @ chol.T).float()


def endpoint_latents(run, a: str, b: str) -> Tensor:
    """Latents [2, D] of the two ends of a walk: each an image file (resampled to the training
    size with a warning) or a latents file, 'z.safetensors' or 'z.safetensors:NAME'. A folder
    or an array would silently put its first image there."""
    ends = []
    for p in (a, b):
        picked = pick_latent(p, run.cfg.latent_size)
        if picked is not None:
            ends.append(picked[1].cpu())
            continue
        if Path(p).is_dir() or Path(p).suffix.lower() in ARRAY_EXTS:
            kind = "a folder" if Path(p).is_dir() else "an array of images"
            raise InputError(f"{p}: {kind}; interpolate walks between two image files "
                             "(or latents files)")
        _, images = load_inputs([p], run.cfg.size, run.cfg.summary.channels)
        ends.append(run.encode(images).cpu()[0])
    return torch.stack(ends)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of latents a, b [D] at t [T] in [0, 1] -> [T, D]: the angle moves
    uniformly and the norm linearly from |a| to |b| (lerp when a, b are parallel or zero)."""
    t = t[:, None].to(a.dtype)
    na, nb = a.norm(), b.norm()
    if float(na) == 0.0 or float(nb) == 0.0:
        return (1 - t) * a + t * b
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua @ ub).clamp(-1.0, 1.0))
    if float(omega.sin()) < 1e-6:
        return (1 - t) * a + t * b
    s = omega.sin()
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / s
    return direction * ((1 - t) * na + t * nb)


def check_animation_path(path: str | os.PathLike) -> None:
    """Before any work: a .gif, or a .mp4 where imageio-ffmpeg is installed."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise InputError(f"{path}: the animation must be a .gif or .mp4 file")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise InputError("writing .mp4 needs imageio-ffmpeg (pip install 'inr-gon[video]'); "
                         "or write a .gif")


def write_animation(path: str | os.PathLike, frames: np.ndarray, fps: float = 12.0) -> None:
    """frames float [F, H, W, C] in [0, 1] -> .gif (Pillow), or .mp4 where imageio-ffmpeg is
    installed. Written atomically."""
    check_animation_path(path)
    path = Path(path)
    suffix = path.suffix.lower()
    frames = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = frames[..., 0] if suffix == ".gif" else np.repeat(frames, 3, axis=-1)
    if suffix == ".gif":
        data = iio.imwrite("<bytes>", frames, extension=".gif", duration=1000 / fps, loop=0)
        atomic_write(path, data)
    else:
        _write_mp4(path, frames, fps)


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    # H.264 in yuv420p wants even sides: pad by edge repetition rather than resample.
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    try:  # ffmpeg writes to a file: a temporary one beside the target, then atomic_write
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        # macro_block_size=2: the sides are even already; imageio's default (16) would resample
        # every frame and print its own warning.
        iio.imwrite(tmp, frames, extension=".mp4", plugin="FFMPEG", fps=fps, macro_block_size=2)
        atomic_write(path, Path(tmp).read_bytes())
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
