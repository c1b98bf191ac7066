"""Latents of new signals: the gradient-origin step, then optional latent optimisation.

Step 0 is the model's own encoder: for a GON, one gradient step from z = 0, no encoder network
and no hypernetwork. K refine steps then run Adam on the latents alone (weights frozen) against
each signal's own reconstruction loss, as an auto-decoder would; a signal's latent never
depends on the other signals fitted with it (the losses are summed, Adam is per coordinate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from inr_gon.errors import InputError
from inr_gon.metrics import image_scores
from inr_gon.models.origin import POINTS, Observation, inner_loss
from inr_gon.models.render import DEFAULT_MAX_MEMORY

REFINE_LR = 1e-2
MAX_REFINE_STEPS = 100_000  # a typo's guard (10^20 steps would never end), far above any use
MAX_REFINE_LR = 1e3  # Adam's float32 update overflows (an error, not NaN) for lr near 1e38
LossFn = Callable[[Tensor, Tensor], Tensor]  # (pred, values) [B, N, C] -> per-signal loss [B]


@dataclass
class FitResult:
    names: list[str]
    z0: Tensor  # [B, D] after the gradient-origin step
    z: Tensor  # [B, D] after refine_steps more
    scores0: dict[str, np.ndarray]  # per-item mse / psnr / ssim after step 0
    scores: dict[str, np.ndarray]  # the same after refine_steps
    refine_steps: int

    def summary(self) -> dict:
        """JSON-able: per-item figures and their means."""
        items = []
        for i, name in enumerate(self.names):
            row = {"name": name, **{f"{k}_0": float(v[i]) for k, v in self.scores0.items()}}
            if self.refine_steps:
                row.update({f"{k}_{self.refine_steps}": float(v[i]) for k, v in self.scores.items()})
            items.append(row)
        return {"refine_steps": self.refine_steps, "items": items, "mean": mean_scores(self)}


def mean_scores(res: FitResult) -> dict[str, float]:
    out = {f"{k}_0": float(np.nanmean(v)) for k, v in res.scores0.items()}
    if res.refine_steps:
        out.update({f"{k}_{res.refine_steps}": float(np.nanmean(v)) for k, v in res.scores.items()})
    return out


def refine(model, coords: Tensor, values: Tensor, z: Tensor, steps: int,
           lr: float = REFINE_LR, obs: Observation = POINTS,
           loss_fn: LossFn = inner_loss) -> Tensor:
    """Adam on latents z [B, D] with the weights frozen: steps on each signal's loss_fn (default
    its inner loss; SDF runs pass their outer loss, sdf.shape_loss). values [B, M, C] observe the
    fine points coords [M * box, d] through obs (default: themselves)."""
    z = z.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = loss_fn(obs(model.decode(coords, z)), values).sum()
            (z.grad,) = torch.autograd.grad(loss, z)  # weights get no .grad
            opt.step()
    return z.detach()


def fit_images(run, images: np.ndarray, names: list[str], refine_steps: int = 0,
               lr: float = REFINE_LR, encoder: Callable[[np.ndarray], Tensor] | None = None,
               batch: int = 64, max_memory: int = DEFAULT_MAX_MEMORY) -> FitResult:
    """images [B, h, w, C] at the run's training size, or smaller (observed: Run.observation)
    -> latents and scores after 0 and K steps, scored against the images as observed.
    encoder: values [B, N, C] (numpy) -> latents [B, D]; default the run's own (torch).
    max_memory: bytes of activations per decoder call while scoring, whatever B is."""
    values = run.to_values(images)  # [B, N, C]
    size = tuple(images.shape[1:3])
    coords, k = run.observation(size)
    if encoder is not None and k > 1:
        (h, w) = run.cfg.size
        raise InputError(f"the exported encoder takes {w}x{h} inputs; {size[1]}x{size[0]} "
                         "needs --backend torch")
    z0s, zs = [], []
    for i in range(0, values.shape[0], batch):
        v = values[i:i + batch]
        with torch.no_grad():
            z0 = (encoder(v.cpu().numpy()).to(run.device) if encoder is not None
                  else run.encode_values(coords, v, k))
        z0s.append(z0)
        zs.append(refine(run.model, coords, v, z0, refine_steps, lr, Observation(k * k)) if refine_steps
                  else z0)
    z0, z = torch.cat(z0s), torch.cat(zs)
    scores0 = image_scores(run.observed(z0, size, max_memory), images)
    scores = image_scores(run.observed(z, size, max_memory), images) if refine_steps else scores0
    return FitResult(list(names), z0.cpu(), z.cpu(), scores0, scores, refine_steps)
