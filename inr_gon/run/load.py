"""The Python API: `load_run(path)` -> Run, a trained model with encode / render / reconstruct."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inr_gon.config import Config
from inr_gon.device import resolve_device
from inr_gon.errors import InputError, warn, wxh
from inr_gon.limits import LOCAL_DIRECT_SIDE, MAX_OBSERVE_FACTOR, MAX_RENDER_SIDE
from inr_gon.modality import IMAGE, SDF
from inr_gon.models import render as R
from inr_gon.models.baselines import ConvGON
from inr_gon.models.factory import build_model
from inr_gon.models.origin import Observation
from inr_gon.run.checkpoint import MODEL_FILE, load_config, load_model_weights


@dataclass
class Run:
    """A trained model and its config. Images are float [B, H, W, C] in [0, 1]."""

    path: Path
    cfg: Config
    model: nn.Module
    device: torch.device
    warned_resample: bool = False

    @property
    def decoder(self) -> nn.Module:
        """The SIREN F(coords, z); the convolutional GON has none."""
        if isinstance(self.model, ConvGON):  # the other models decode with a network of points
            raise InputError(f"{self.path}: a '{self.cfg.net.model}' run has no SIREN decoder "
                             "(this needs a gon or ae run)")
        return self.model.decoder

    def require_images(self) -> None:
        """InputError unless this is an image run (an SDF decoder takes 3D points, not pixels)."""
        if self.cfg.modality is not IMAGE:
            raise InputError(f"{self.path}: an {self.cfg.summary.modality} run renders no images "
                             "(use `inr-gon mesh`)")

    def require_shapes(self, what: str) -> None:
        """InputError unless this is an SDF run (an image decoder has no third coordinate)."""
        if self.cfg.modality is not SDF:
            raise InputError(f"{self.path} is an {self.cfg.summary.modality} run: {what} needs an "
                             "SDF run (trained on meshes or builtin:shapes3d); use `render` for images")

    def require_latent_space(self, what: str) -> None:
        """InputError for a local run: its codes belong to one input's pixel grid, so there is
        no latent space to sample, walk or refine in."""
        if self.cfg.net.model == "local":
            raise InputError(f"{self.path}: a local run (super-resolution) has no latent space for "
                             f"{what}: render RUN INPUT --scale S super-resolves an input")

    def to_values(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images [B, h, w, C] at the training size, or smaller for a GON (observed, see
        `observation`) -> values [B, h*w, C] on the device."""
        self.require_images()
        try:
            x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=self.device)
        except (TypeError, ValueError) as e:
            raise InputError(f"images must be a float array [B, H, W, C] ({e})") from None
        if x.dim() == 3:
            x = x.unsqueeze(-1) if self.cfg.summary.channels == 1 else x.unsqueeze(0)
        (h, w), smaller_ok = self.cfg.size, self.cfg.net.model in ("gon", "local")
        if self.cfg.net.model == "local":  # any size its one dense solve affords
            h, w = max(h, LOCAL_DIRECT_SIDE), max(w, LOCAL_DIRECT_SIDE)
        fits = x.dim() == 4 and x.shape[-1] == self.cfg.summary.channels and (
            tuple(x.shape[1:3]) == (h, w)
            or smaller_ok and 2 <= x.shape[1] <= h and 2 <= x.shape[2] <= w)
        if not fits:
            most = "at most" if smaller_ok else "exactly"
            raise InputError(f"images are {tuple(x.shape[1:])}, the run wants {most} "
                             f"{(h, w, self.cfg.summary.channels)} (and 2x2 or more): resample "
                             "them first (inr_gon.datasets.resize_image)")
        if not torch.isfinite(x).all():
            raise InputError("images contain NaN or inf")
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def observation(self, size: tuple[int, int]) -> tuple[torch.Tensor, int]:
        """(fine points [h*w*k^2, 2], k) of an input of size (h, w): each input pixel is the
        box average of the function over its footprint, sampled at the centres of k x k
        sub-pixels, k the size ratio to the training size (rounded up, at most
        MAX_OBSERVE_FACTOR). At the training size: the pixel centres, k = 1."""
        (h, w), (th, tw) = size, self.cfg.size
        k = min(MAX_OBSERVE_FACTOR, max(1, math.ceil(max(th / h, tw / w))))
        return R.box_grid(h, w, k, self.device), k

    def observed(self, z: torch.Tensor, size: tuple[int, int],
                 max_memory: int = R.DEFAULT_MAX_MEMORY) -> np.ndarray:
        """What the model predicts an input of size (h, w) shows: latents [B, D] rendered on
        the fine points of `observation` and box-averaged -> [B, h, w, C]."""
        _, k = self.observation(size)
        fine = self.render(z, (size[0] * k, size[1] * k), max_memory)
        return R.box_downsample(torch.as_tensor(fine), k).numpy()

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Gradient-origin latents [B, D] of images [B, h, w, C] at the training size or, for a
        GON, smaller: then the step fits the box averages it observed (`observation`), so
        rendering the latent larger is the model's own answer, not an upscale."""
        values = self.to_values(images)
        coords, k = self.observation(np.shape(images)[1:3])
        if self.cfg.net.model == "local":  # codes [B, h, w, d] of the input's own grid
            x = values.reshape(values.shape[0], *np.shape(images)[1:3], -1)
            big = (x.shape[1] * k, x.shape[2] * k)
            return torch.cat([self.model.encode_images(x[i:i + batch], big)
                              for i in range(0, x.shape[0], batch)])
        return torch.cat([self.encode_values(coords, values[i:i + batch], k)
                          for i in range(0, values.shape[0], batch)])

    def encode_values(self, coords: torch.Tensor, values: torch.Tensor, k: int = 1) -> torch.Tensor:
        """The model's encoder on values [B, M, C] at coords [M*k^2, 2] (k > 1: observed)."""
        return self.model.encode(coords, values, Observation(k * k))

    def render(self, z: torch.Tensor, size: tuple[int, int] | None = None,
               max_memory: int = R.DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Decode latents [B, D] on a (H, W) grid (default: the training size)."""
        self.require_images()
        h, w = size or self.cfg.size
        z = torch.as_tensor(z)
        if self.cfg.net.model == "local":
            d = self.model.latent_size
            if z.dim() != 4 or z.shape[-1] != d or not torch.isfinite(z).all():
                raise InputError(f"a local run's latents are code grids [B, h, w, {d}], "
                                 f"got {tuple(z.shape)}")
            return self.model.render(z.to(self.device), h, w, max_memory)
        if z.dim() != 2 or z.shape[1] != self.cfg.latent_size or not torch.isfinite(z).all():
            raise InputError(f"latents must be finite [B, {self.cfg.latent_size}], "
                             f"got {tuple(z.shape)}")
        if not (0 < h <= MAX_RENDER_SIDE and 0 < w <= MAX_RENDER_SIDE):
            raise InputError(f"render size must be 1 to {MAX_RENDER_SIDE} per side, got {wxh(h, w)}")
        if self.cfg.net.model == "conv" and (h, w) != self.cfg.size and not self.warned_resample:
            self.warned_resample = True  # once per run, not once per rendered item
            warn(f"the convolutional GON decodes at {wxh(*self.cfg.size)} only: "
                 f"{wxh(h, w)} is a bilinear resample, not a super-resolved render")
        return self.model.render(z.to(self.device), h, w, max_memory)

    @torch.no_grad()
    def upscale(self, images: np.ndarray, scale: float) -> np.ndarray:
        """Super-resolution by a factor: images [B, h, w, C] -> [B, H, W, C], (H, W) = s (h, w)
        rounded. A local run encodes for that size (its step observes each input pixel as the
        area average of the output pixels it overlaps); a GON renders its latent larger. Whole
        photos: inference/superres.py."""
        h, w = np.shape(images)[1:3]
        big = R.scaled_size((h, w), scale)
        if self.cfg.net.model != "local":
            return self.render(self.encode(images), big)
        return self.model.upscale(self.to_values(images).reshape(len(images), h, w, -1), big)

    def reconstruct(self, images: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        return self.render(self.encode(images), size)


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """A run folder -> Run, weights from model.safetensors (never a pickle)."""
    run_dir = Path(path)
    cfg = load_config(run_dir)
    model = build_model(cfg)
    if not (run_dir / MODEL_FILE).is_file():
        raise InputError(f"{run_dir}: run has no {MODEL_FILE} yet")
    load_model_weights(run_dir, model)
    dev = resolve_device(device)
    return Run(run_dir, cfg, model.to(dev).eval(), dev)
