"""The Python API: `load_run(path)` -> Run, a trained model with encode / render / reconstruct."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inr_gon.config import Config
from inr_gon.device import resolve_device
from inr_gon.errors import InputError, warn, wxh
from inr_gon.limits import MAX_RENDER_SIDE
from inr_gon.models import render as R
from inr_gon.models.factory import build_model
from inr_gon.training.checkpoint import MODEL_FILE, load_config, load_model_weights


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
        if not hasattr(self.model, "decoder"):
            raise InputError(f"{self.path}: a '{self.cfg.net.model}' run has no SIREN decoder "
                             "(this needs a gon or ae run)")
        return self.model.decoder

    def require_images(self) -> None:
        """InputError unless this is an image run (an SDF decoder takes 3D points, not pixels)."""
        if self.cfg.summary.modality != "image":
            raise InputError(f"{self.path}: an {self.cfg.summary.modality} run renders no images "
                             "(use `inr-gon mesh`)")

    def to_values(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images at the training size [B, H, W, C] -> values [B, H*W, C] on the device."""
        self.require_images()
        try:
            x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=self.device)
        except (TypeError, ValueError) as e:
            raise InputError(f"images must be a float array [B, H, W, C] ({e})") from None
        if x.dim() == 3:
            x = x.unsqueeze(-1) if self.cfg.summary.channels == 1 else x.unsqueeze(0)
        if x.dim() != 4 or tuple(x.shape[1:3]) != self.cfg.size or x.shape[-1] != self.cfg.summary.channels:
            raise InputError(f"images are {tuple(x.shape[1:])}, the run wants "
                             f"{(*self.cfg.size, self.cfg.summary.channels)}: resample them first "
                             "(inr_gon.datasets.resize_image)")
        if not torch.isfinite(x).all():
            raise InputError("images contain NaN or inf")
        return x.reshape(x.shape[0], -1, x.shape[-1])

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Gradient-origin latents [B, D] of images at the training size."""
        values = self.to_values(images)
        coords = R.grid(*self.cfg.size, self.device)
        return torch.cat([self.model.encode(coords, values[i:i + batch])
                          for i in range(0, values.shape[0], batch)])

    def render(self, z: torch.Tensor, size: tuple[int, int] | None = None,
               max_memory: int = R.DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Decode latents [B, D] on a (H, W) grid (default: the training size)."""
        self.require_images()
        h, w = size or self.cfg.size
        z = torch.as_tensor(z)
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
