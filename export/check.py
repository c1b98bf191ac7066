"""Checks of an exported graph against torch, run before the file is written.

float32 graphs must match torch to TOL (largest difference, relative to the largest value when
that is above 1). An fp16 or int8 decoder is held to a PSNR-drop bound on real items instead,
because its error is a rounding floor that depends on the weights (fp16 can break badly on
some), and to finite outputs on random inputs. Every check passes when its value is at most its bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inr_gon.config import Config
from inr_gon.datasets import load_images, to_channels
from inr_gon.errors import InputError, warn
from inr_gon.metrics import psnr_from_mse
from inr_gon.models.render import grid
from inr_gon.training.tasks import make_task

TOL = 1e-4
LOSSY_PSNR_DROP = 0.5  # dB, for fp16 and int8 decoders


class ExportCheckError(Exception):
    """An exported graph disagrees with torch beyond its bound: exit 1, nothing written."""


@dataclass
class Check:
    file: str
    inputs: str
    measure: str
    value: float
    bound: float
    ok: bool


@dataclass
class Items:
    """Real signals: coords [N, d] (shared) or [B, N, d], values [B, N, C]."""

    coords: Tensor
    values: Tensor


def training_items(cfg: Config, n: int = 4) -> Items | None:
    """A few real signals of the run's data, or None (with a warning) when it is not at hand."""
    try:
        if cfg.summary.modality == "image":
            c = cfg.summary.channels
            images = to_channels(load_images(cfg.dataset.data, cfg.size, limit=n).images, c)
            values = torch.from_numpy(np.ascontiguousarray(images)).reshape(len(images), -1, c)
            return Items(grid(*cfg.size), values)

        coords, values = make_task(cfg.replace(batch_size=n, device="cpu"), torch.device("cpu")).batch(0)
        return Items(coords, values[:n])
    except (InputError, NotImplementedError, OSError) as e:
        warn(f"training data of the run not at hand ({e}): checked on random inputs only")
        return None


def random_inputs(cfg: Config, scale: float, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """(coords [3, 257, d] in [-1, 1], values [3, 257, C] in [0, 1], latents [3, D] * scale)."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.rand(3, 257, cfg.coord_dim, generator=g) * 2 - 1
    values = torch.rand(3, 257, cfg.out_dim, generator=g)
    return coords, values, torch.randn(3, cfg.latent_size, generator=g) * scale


def diff(got: np.ndarray, ref: Tensor) -> float:
    ref = ref.detach().numpy()
    if not np.isfinite(got).all():
        return math.inf
    return float(np.abs(got - ref).max() / max(1.0, np.abs(ref).max()))


def psnr(pred: np.ndarray, truth: np.ndarray, cfg: Config) -> float:
    """Images: peak 1. SDF: distances clamped to the loss's band, peak its width."""
    if cfg.summary.modality == "sdf":
        d = cfg.sdf.sdf_clamp
        pred, truth = np.clip(pred, -d, d) / (2 * d), np.clip(truth, -d, d) / (2 * d)
    mse = float(np.mean((np.asarray(pred, np.float64) - truth) ** 2))
    return float(psnr_from_mse(mse)) if math.isfinite(mse) else -math.inf


def batched(coords: Tensor) -> Tensor:
    return coords[None] if coords.dim() == 2 else coords  # one shared grid: batch 1, broadcast


@torch.no_grad()
def check_decoder(run_session, model, cfg: Config, half_graph: torch.nn.Module | None,
                  items: Items | None, name: str, lossy: bool = False) -> list[Check]:
    """run_session(feeds) -> values; model: the GON on the CPU in float32. lossy: a file of
    lower precision (fp16 always is), held to the PSNR-drop bound instead of TOL.

    half_graph (fp16 files): the same graph run by torch in half precision. onnxruntime's CPU
    provider has no fp16 kernels and runs an fp16 file in float32 with fp16-rounded weights,
    which cannot overflow; torch rounds every activation to fp16, as a GPU computes, so an
    fp16 file is also held to the bound under that arithmetic."""
    latents = model.encode(items.coords, items.values) if items is not None else None
    scale = float(latents.std()) if latents is not None and latents.numel() > 1 else 1.0
    coords, _, z = random_inputs(cfg, scale)
    runners = [("", run_session)]
    if half_graph is not None:
        runners.append((", torch fp16 arithmetic",
                        lambda feeds: half_graph(*map(torch.from_numpy, feeds.values())).numpy()))
    checks = []
    for how, run in runners:
        checks += _decoder_checks(run, model, cfg, lossy or half_graph is not None, coords, z,
                                  items, latents, name, how)
    return checks


def _decoder_checks(run, model, cfg, lossy, coords, z, items, latents, name, how) -> list[Check]:
    got = run({"coords": coords.numpy(), "latent": z.numpy()})
    if lossy:
        bad = float((~np.isfinite(got)).sum())
        checks = [Check(name, "random inputs" + how, "non-finite values", bad, 0.0, bad == 0)]
    else:
        d = diff(got, model.decode(coords, z))
        checks = [Check(name, "random inputs" + how, "max |diff|", d, TOL, d <= TOL)]
    if items is None:
        return checks
    got = run({"coords": batched(items.coords).numpy(), "latent": latents.numpy()})
    ref = model.decode(items.coords, latents)
    label = f"{len(latents)} training items{how}"
    if lossy:
        truth = items.values.numpy()
        drop = psnr(ref.numpy(), truth, cfg) - psnr(got, truth, cfg)
        checks.append(Check(name, label, "PSNR drop, dB", drop, LOSSY_PSNR_DROP, drop <= LOSSY_PSNR_DROP))
    else:
        d = diff(got, ref)
        checks.append(Check(name, label, "max |diff|", d, TOL, d <= TOL))
    return checks


@torch.no_grad()
def check_encoder(run_session, model, cfg: Config, items: Items | None, name: str,
                  grid: Tensor | None = None) -> list[Check]:
    """General encoder (grid None): random coords and real items. Grid encoder: values on
    `grid` [N, d], random and real. Latents compared relative to their largest entry."""
    coords, values, _ = random_inputs(cfg, 1.0)
    if grid is not None:
        coords = grid
        values = torch.rand(3, grid.shape[0], cfg.out_dim, generator=torch.Generator().manual_seed(1))
    cases = [("random inputs", coords, values)]
    if items is not None and (grid is None or torch.equal(items.coords, grid)):
        cases.append((f"{len(items.values)} training items", items.coords, items.values))
    checks = []
    for label, c, v in cases:
        feeds = {"values": v.numpy()} if grid is not None else {"coords": batched(c).numpy(),
                                                                  "values": v.numpy()}
        d = diff(run_session(feeds), model.encode(c, v))
        checks.append(Check(name, label, "max |diff|", d, TOL, d <= TOL))
    return checks
