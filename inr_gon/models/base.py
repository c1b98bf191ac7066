"""What every model is to training, evaluation and the CLI, and what the SIREN models share.

`Model`: `encode(coords, values, obs)` -> latents, `decode(coords, z)` -> values,
`render(z, H, W)` -> images, `forward(coords, values, generator)` -> the training step's
outputs (`step_outputs`), and `check(cfg)`: the config rules of that model. `SirenModel`: a
model whose decoder is the config's SIREN (the implicit GON and the autoencoder baseline), so
decode and render are the decoder's.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.fields import scale_spans
from inr_gon.models.origin import POINTS, Observation
from inr_gon.models.render import DEFAULT_MAX_MEMORY, render_images
from inr_gon.models.siren import Siren


def decoder_for(cfg: Config) -> Siren:
    """The SIREN decoder a config describes (GON and the autoencoder baseline)."""
    net = cfg.net
    return Siren(cfg.coord_dim, net.latent_dim, cfg.out_dim, net.hidden, net.layers, net.w0,
                 net.w0_hidden, net.latent_init, net.modulation, net.latent_grid)


class Model(nn.Module):
    """A model of a run: built from its config, trained by its forward."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg

    @staticmethod
    def check(cfg: Config) -> None:
        """InputError for a config this model cannot honour (none by default)."""

    @property
    def latent_size(self) -> int:
        """D of its latents [B, D] (a local run's: of its code grids [B, h, w, D])."""
        return self.cfg.latent_size

    def encode(self, coords: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
        """coords [N, d] or [B, N, d], values [B, N / box, C] -> latents [B, D]."""
        raise NotImplementedError

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        """coords [N, d] or [B, N, d], latents [B, D] -> values [B, N, C]."""
        raise NotImplementedError

    def render(self, z: Tensor, height: int, width: int,
               max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Latents [B, D] -> images float32 [B, H, W, C] in [0, 1]."""
        raise NotImplementedError

    def forward(self, coords: Tensor, values: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The training step's outputs: encode, decode at coords, score against values."""
        z = self.encode(coords, values)
        return step_outputs(self.decode(coords, z), values, z, self.cfg)


class SirenModel(Model):
    """A model decoding with the config's SIREN F(coords, z)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.decoder = decoder_for(cfg)

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        return self.decoder(coords, z)

    def render(self, z: Tensor, height: int, width: int,
               max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Latents [B, D] -> images [B, H, W, C] at any size, in bounded memory."""
        return render_images(self.decoder, z, height, width, max_memory)


def check_image_model(cfg: Config, siren: bool) -> None:
    """The rules every model but the GON shares: images only, the paper's gradient step, no
    variational head; without a SIREN (conv, local), no modulation or latent grid."""
    net, model = cfg.net, cfg.net.model
    if net.origin_step != "gradient":
        raise InputError(f"--origin-step {net.origin_step} is for --model gon")
    if not siren and (net.modulation != "first" or net.latent_grid):
        raise InputError(f"--model {model} has no SIREN: --modulation and --latent-grid are for "
                         "gon and ae")
    if cfg.summary.modality != "image":
        raise InputError(f"model '{model}' is for images; use --model gon for {cfg.summary.modality}")
    if net.variational:
        raise InputError("--variational is implemented for --model gon only")


def check_whole_images(cfg: Config, views: bool) -> None:
    """A model that encodes whole images draws no subset of points; views: whether it can
    encode box-downsampled views (--observe-scales)."""
    if cfg.train.points_per_signal:
        raise InputError(f"--model {cfg.net.model} encodes whole images: leave "
                         "--points-per-signal at 0")
    if not views and scale_spans(cfg.train.observe_scales) != [(1, 1)]:
        raise InputError("--observe-scales is for --model gon or local on images")


def step_outputs(pred: Tensor, values: Tensor, z: Tensor, cfg: Config,
                 kl: Tensor | None = None) -> dict[str, Tensor]:
    """What a model's forward returns to the training loop; kl None: no variational term."""
    rec = outer_loss(pred, values, cfg)
    loss = rec if kl is None else rec + cfg.net.kl_weight * kl
    return {"loss": loss, "rec": rec, "kl": values.new_zeros(()) if kl is None else kl,
            "mse": (pred.detach() - values).pow(2).mean(), "pred": pred, "z": z}


def outer_loss(pred: Tensor, target: Tensor, cfg: Config) -> Tensor:
    """Images: mean squared error, or mean absolute error (`--image-loss l1`: what EDSR and LIIF
    train with; measured sharper for super-resolution, docs/superres.md). SDF: DeepSDF's
    clamped L1."""
    if cfg.summary.modality == "sdf":
        return clamped_l1(pred, target, cfg.sdf.sdf_clamp).mean()
    err = pred - target
    return err.abs().mean() if cfg.train.image_loss == "l1" else err.pow(2).mean()


def clamped_l1(pred: Tensor, target: Tensor, clamp: float) -> Tensor:
    """DeepSDF's clamped L1 of each shape: [..., N, 1] -> [...] (mean over its points)."""
    return (pred.clamp(-clamp, clamp) - target.clamp(-clamp, clamp)).abs().mean((-2, -1))
