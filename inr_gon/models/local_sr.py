"""The `local` model of a run (config `model local`, `--preset superres`): the LocalGON of
models/local.py with what training, evaluation, rendering and the CLI call (models/base.Model).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.fields import scale_spans
from inr_gon.models.base import Model, check_image_model, check_whole_images, outer_loss
from inr_gon.models.local import LocalDecoder, LocalGON
from inr_gon.models.local_geometry import Geometry
from inr_gon.models.origin import POINTS, Observation
from inr_gon.models.render import DEFAULT_MAX_MEMORY


class LocalSR(Model):
    """The `local` model of a run (config `model local`, `--preset superres`): LocalGON with the
    training step and the methods a Run calls. Its latent is the code grid [B, h, w, d] (d + C
    with the bicubic base) of an input of h x w pixels, encoded for one output size H x W (the
    step observes each input pixel as the area average of the output pixels it overlaps, any
    factor; the decoder is told the cell size h / H)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        net = cfg.net
        self.net = LocalGON(net.latent_dim, cfg.out_dim, net.hidden, net.layers, "gelu",
                            residual=net.local_base == "bicubic", conditioned=net.local_pixels,
                            basis=net.local_window)
        self.spans = scale_spans(cfg.train.observe_scales)  # [(lo, hi)]: a factor per view
        self.steps = net.inner_steps
        self._geos: dict = {}
        self._origins: dict = {}  # inference only: the factorisation per geometry

    @staticmethod
    def check(cfg: Config) -> None:
        """Images, whole (it encodes each input pixel), no SIREN; pixels read beside a base."""
        check_image_model(cfg, siren=False)
        check_whole_images(cfg, views=True)
        if cfg.net.local_pixels and cfg.net.local_base != "bicubic":
            raise InputError("--local-pixels needs --local-base bicubic (the latent then carries "
                             "the input's pixels)")

    @property
    def decoder(self) -> LocalDecoder:
        return self.net.decoder

    @property
    def largest_scale(self) -> float:
        """The factor it learned: its largest observe scale (what evaluation encodes for, and
        the default factor of `render` and `fit --whole`)."""
        return max(hi for _, hi in self.spans)

    @property
    def latent_size(self) -> int:
        """Values per input pixel of its code grids (the input's pixels too with a base)."""
        return self.net.decoder.latent_dim

    def geometry(self, out_hw: tuple[int, int], in_hw: tuple[int, int]) -> Geometry:
        key = (tuple(out_hw), tuple(in_hw), str(self.net.rho.device))
        if key not in self._geos:
            self._geos[key] = Geometry.of(out_hw, in_hw, self.net.rho.device,
                                          basis=self.decoder.basis)
        return self._geos[key]

    def origin(self, geo: Geometry) -> tuple[Tensor, Tensor, Tensor] | None:
        """Without autograd (rendering, eval) the step's factorisation is kept per geometry
        until a parameter changes (their version counters); in training it is rebuilt."""
        if torch.is_grad_enabled():
            return None
        key = (geo.out_hw, geo.in_hw, str(self.net.rho.device))
        version = tuple(p._version for p in self.parameters())
        hit = self._origins.get(key)
        if hit is None or hit[0] != version:
            self._origins[key] = hit = (version, self.net.origin(geo))
        return hit[1]

    def encode_images(self, images: Tensor, out_hw: tuple[int, int], decode=None) -> Tensor:
        """images [B, h, w, C] -> codes [B, h, w, d] for rendering at out_hw (H, W) (decode: as
        LocalGON.encode)."""
        b, h, w, c = images.shape
        geo = self.geometry(out_hw, (h, w))
        z = self.net.encode(geo, images.reshape(b, h * w, c), self.steps, self.origin(geo), decode)
        return z.reshape(b, h, w, -1)

    @property
    def point_bytes(self) -> int:
        """Activation bytes one output point holds in a decoder call (~4 live float vectors)."""
        return self.net.decoder.out.in_features * 16

    def upscale(self, images: Tensor, out_hw: tuple[int, int],
                max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        """images [B, h, w, C] -> [B, H, W, C] (numpy): encoded and rendered in batches within
        max_memory, since the chord steps decode every output point of a batch at once."""
        b = images.shape[0]
        batch = max(1, max_memory // (out_hw[0] * out_hw[1] * self.point_bytes))
        return np.concatenate([
            self.render(self.encode_images(images[i:i + batch], out_hw), *out_hw, max_memory)
            for i in range(0, b, batch)])

    def render(self, z: Tensor, height: int, width: int, max_memory: int = DEFAULT_MAX_MEMORY,
               decode=None) -> np.ndarray:
        """codes [B, h, w, d] -> images [B, H, W, C] (numpy, in [0, 1]), rows in chunks.
        decode: as LocalGON.encode."""
        geo = self.geometry((height, width), tuple(z.shape[1:3]))
        return self.render_geometry(geo, z, max_memory, decode)

    def render_points(self, z: Tensor, ys: Tensor, xs: Tensor, cell: float,
                      max_memory: int = DEFAULT_MAX_MEMORY, decode=None) -> np.ndarray:
        """codes [B, h, w, d] -> images [B, len(ys), len(xs), C] at the output rows ys and
        columns xs (input pixel units; a tile's block of a larger render), pixels cell wide."""
        geo = Geometry.at(ys, xs, tuple(z.shape[1:3]), cell, self.net.rho.device,
                          basis=self.decoder.basis)
        return self.render_geometry(geo, z, max_memory, decode)

    def render_geometry(self, geo: Geometry, z: Tensor, max_memory: int = DEFAULT_MAX_MEMORY,
                        decode=None) -> np.ndarray:
        """codes [B, h, w, d] decoded at a geometry's points, rows in chunks: [B, H, W, C]."""
        b, (hh, ww) = z.shape[0], geo.out_hw
        step = max(1, max_memory // max(b * ww * self.point_bytes, 1))  # rows a call
        out = torch.empty(b, hh * ww, self.cfg.out_dim)
        decode = decode or self.net.decoder
        with torch.no_grad():
            for r in range(0, hh, step):
                sl = slice(r * ww, min(hh, r + step) * ww)
                part = geo.rows(slice(r, min(hh, r + step)))
                out[:, sl] = decode(part, z.flatten(1, 2)).clamp(0, 1).cpu()
        return out.reshape(b, hh, ww, -1).numpy()

    # -- what the training loop and its evaluation call ---------------------------------------

    def view(self, values: Tensor, scale: float) -> Tensor:
        """The full-size values [B, H*W, C] seen at 1/scale: [B, h, w, C], h = round(H / scale),
        each pixel the area average of what it covers: the step's own observation (its
        geometry, cached, is the one the encode of this view uses)."""
        (hh, ww), c = self.cfg.size, values.shape[-1]
        small = (max(1, round(hh / scale)), max(1, round(ww / scale)))
        return self.geometry((hh, ww), small).observe(values).reshape(-1, *small, c)

    def forward(self, coords: Tensor, values: Tensor, generator=None) -> dict[str, Tensor]:
        """One view per observe scale (a span: a factor drawn for this step), each
        super-resolved to the training size and scored there; the loss is their mean."""
        size = self.cfg.size
        losses, mses, preds = [], [], []
        for lo, hi in self.spans:
            s = lo + (hi - lo) * float(torch.rand((), generator=generator)) if hi > lo else lo
            z = self.encode_images(self.view(values, s), size)
            pred = self.net.decoder(self.geometry(size, tuple(z.shape[1:3])), z.flatten(1, 2))
            preds.append(pred)
            losses.append(outer_loss(pred, values, self.cfg))
            mses.append((pred.detach() - values).pow(2).mean())
        loss = torch.stack(losses).mean()
        zero = values.new_zeros(())
        return {"loss": loss, "rec": loss, "kl": zero, "mse": torch.stack(mses).mean(),
                "pred": preds[-1], "z": z}

    def encode(self, coords: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
        """Evaluation: the view at the largest observe scale, encoded for that scale."""
        return self.encode_images(self.view(values, self.largest_scale), self.cfg.size)

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        """Codes rendered at the training size: [B, H*W, C]."""
        geo = self.geometry(self.cfg.size, tuple(z.shape[1:3]))
        return self.net.decoder(geo, z.flatten(1, 2))
