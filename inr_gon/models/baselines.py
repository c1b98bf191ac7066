"""Baselines behind `--model`: the convolutional GON of the paper, and an autoencoder.

Both are `base.Model`s (`encode(coords, values)`, `decode(coords, z)`, `render(z, H, W)`,
`forward(coords, values, generator) -> dict(loss, rec, kl, mse, pred, z)`), so training,
evaluation and the CLI treat every model alike.

- ConvGON: the paper's GON.py generator (transposed convolutions 1x1 -> 4x4 -> ... doubling,
  ReLU, sigmoid out) with the gradient-origin latent. One change: BatchNorm -> GroupNorm. At
  z0 = 0 every item of a batch gives the same first-layer output, so BatchNorm's batch variance
  is zero there, the latent of a signal depends on its batch mates, and the running statistics
  mix the z0 = 0 pass with the real one (train and eval disagree). GroupNorm normalises each
  item on its own. The decoder has a fixed output grid: `decode` samples it bilinearly at the
  given coordinates (exact at the training pixel centres), so other sizes are resampled, not
  super-resolved.
- AutoEncoder: a convolutional encoder plus the same SIREN decoder as the implicit GON; the
  encoder's width is chosen so it has about as many parameters as the decoder (the paper
  compares GON to autoencoders with about twice its parameters).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inr_gon.config import Config
from inr_gon.errors import InputError, wxh
from inr_gon.fields import scale_spans
from inr_gon.models.base import Model, SirenModel, check_image_model, check_whole_images
from inr_gon.models.origin import POINTS, Observation, latent_autograd
from inr_gon.models.render import DEFAULT_MAX_MEMORY, grid


def _groups(channels: int, pixels: int) -> int:
    """Up to 8 groups, but never one value per group: GroupNorm of a single value is always 0
    (it would erase the latent), and torch refuses it in training (a 1x1 base grid)."""
    g = math.gcd(channels, 8)
    while g > 1 and channels // g * pixels < 2:
        g //= 2
    return g


class ConvDecoder(nn.Module):
    """z [B, D] -> images [B, C, H, W]: (layers - 1) doublings from a base grid of
    ceil(H / 2^k) x ceil(W / 2^k), centre-cropped to H x W. Widest layer = `hidden` channels."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        k = max(cfg.net.layers - 1, 1)
        self.size = cfg.size
        base = (math.ceil(cfg.dataset.height / 2**k), math.ceil(cfg.dataset.width / 2**k))
        widths = [max(cfg.net.hidden // 2**i, 1) for i in range(k)]
        mods: list[nn.Module] = [nn.ConvTranspose2d(cfg.net.latent_dim, widths[0], base)]
        for i in range(k):
            pixels = base[0] * base[1] * 4**i
            mods += [nn.GroupNorm(_groups(widths[i], pixels), widths[i]), nn.ReLU()]
            out = widths[i + 1] if i + 1 < k else cfg.summary.channels
            mods.append(nn.ConvTranspose2d(widths[i], out, 4, 2, 1))
        self.net = nn.Sequential(*mods, nn.Sigmoid())

    def forward(self, z: Tensor) -> Tensor:
        img = self.net(z[:, :, None, None])
        top = (img.shape[-2] - self.size[0]) // 2
        left = (img.shape[-1] - self.size[1]) // 2
        return img[:, :, top:top + self.size[0], left:left + self.size[1]]


def sample_image(img: Tensor, coords: Tensor) -> Tensor:
    """Bilinear samples of images [B, C, H, W] at (y, x) pixel-centre coords [N, 2] or
    [B, N, 2] in [-1, 1] (align_corners=False is that convention) -> values [B, N, C]."""
    b = img.shape[0]
    xy = coords.flip(-1).expand(b, *coords.shape[-2:])[:, None]  # [B, 1, N, 2] as (x, y)
    out = F.grid_sample(img, xy.to(img.dtype), mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out[:, :, 0].transpose(1, 2)


class ConvGON(Model):
    """The paper's convolutional GON: z = -dL/dz0 at z0 = 0 through a transposed-conv decoder."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.net = ConvDecoder(cfg)
        self.register_buffer("grid", grid(*cfg.size), persistent=False)

    @staticmethod
    def check(cfg: Config) -> None:
        """Images, no SIREN, no views; the decoder doubles a base grid (layers - 1) times:
        doublings past one pixel only grow an output that is cropped away (2^39 pixels a side
        at --layers 40)."""
        check_image_model(cfg, siren=False)
        if scale_spans(cfg.train.observe_scales) != [(1, 1)]:
            raise InputError("--observe-scales is for --model gon or local on images")
        (h, w), layers, hidden = cfg.size, cfg.net.layers, cfg.net.hidden
        most = max((max(h, w) - 1).bit_length(), 1) + 1
        if layers > most:
            raise InputError(f"--model conv doubles its grid layers - 1 times: at {wxh(h, w)} use "
                             f"at most --layers {most}, got {layers}")
        if hidden < 2 and 2 ** max(layers - 1, 1) >= max(h, w):
            raise InputError(f"--model conv at --layers {layers} starts from a 1x1 grid, which "
                             "needs --hidden 2 or more (one value normalises to a constant)")

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        img = self.net(z)
        if coords.dim() == 2 and coords.shape == self.grid.shape and torch.equal(coords, self.grid):
            return img.flatten(2).transpose(1, 2)  # the training grid: the pixels themselves
        return sample_image(img, coords)

    def encode(self, coords: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
        create = torch.is_grad_enabled() and not self.cfg.net.detach_inner
        z0 = values.new_zeros(values.shape[0], self.cfg.net.latent_dim)
        return latent_autograd(self.decode, coords, values, z0, create, obs)

    @torch.no_grad()
    def render(self, z: Tensor, height: int, width: int,
               max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        """The fixed-size output, resampled bilinearly to H x W: [B, H, W, C] in [0, 1]."""
        img = self.net(z)
        if (height, width) != self.cfg.size:
            img = F.interpolate(img, size=(height, width), mode="bilinear", align_corners=False)
        return img.clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()


class ConvEncoder(nn.Module):
    """images [B, C, H, W] -> z [B, D]: three stride-2 convolutions, 4x4 average pool, linear."""

    def __init__(self, channels: int, width: int, latent_dim: int) -> None:
        super().__init__()
        w = [width, 2 * width, 4 * width]
        self.net = nn.Sequential(
            nn.Conv2d(channels, w[0], 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w[0], w[1], 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w[1], w[2], 3, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * w[2], latent_dim))

    def forward(self, img: Tensor) -> Tensor:
        return self.net(img)

    @staticmethod
    def parameters_for(channels: int, width: int, latent_dim: int) -> int:
        w0, w1, w2 = width, 2 * width, 4 * width
        convs = 9 * (channels * w0 + w0 * w1 + w1 * w2) + w0 + w1 + w2
        return convs + 16 * w2 * latent_dim + latent_dim


def encoder_width(channels: int, latent_dim: int, target: int) -> int:
    """The width whose ConvEncoder has the parameter count closest to target."""
    count = lambda w: ConvEncoder.parameters_for(channels, w, latent_dim)  # noqa: E731
    return min(range(1, 1025), key=lambda w: abs(count(w) - target))


class AutoEncoder(SirenModel):
    """A convolutional encoder and the implicit GON's SIREN decoder, trained end to end."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        target = sum(p.numel() for p in self.decoder.parameters())
        width = encoder_width(cfg.summary.channels, cfg.latent_size, target)
        self.encoder = ConvEncoder(cfg.summary.channels, width, cfg.latent_size)

    @staticmethod
    def check(cfg: Config) -> None:
        """Images, whole, no views; no gradient-origin step to detach."""
        check_image_model(cfg, siren=True)
        if cfg.net.detach_inner:
            raise InputError("--detach-inner needs a gradient-origin model (gon or conv), not ae")
        check_whole_images(cfg, views=False)

    def encode(self, coords: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
        """values [B, H*W, C] on the training grid -> z [B, D] (coords are implied)."""
        h, w = self.cfg.size
        if values.shape[-2] != h * w:
            raise ValueError(f"the autoencoder encodes whole {h}x{w} images, got {values.shape[-2]} "
                             "points")
        return self.encoder(values.transpose(1, 2).reshape(values.shape[0], -1, h, w))
