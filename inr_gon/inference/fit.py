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

from inr_gon.metrics import image_scores
from inr_gon.models.gon import inner_loss
from inr_gon.models.render import grid

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
           lr: float = REFINE_LR, loss_fn: LossFn = inner_loss) -> Tensor:
    """Adam on latents z [B, D] with the weights frozen: steps on each signal's loss_fn
    (default its inner loss; SDF runs pass their outer loss, sdf.shape_loss). values [B, N, C]."""
    z = z.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = loss_fn(model.decode(coords, z), values).sum()
            (z.grad,) = torch.autograd.grad(loss, z)  # weights get no .grad
            opt.step()
    return z.detach()


def fit_images(run, images: np.ndarray, names: list[str], refine_steps: int = 0,
               lr: float = REFINE_LR, encoder: Callable[[np.ndarray], Tensor] | None = None,
               batch: int = 64) -> FitResult:
    """images [B, H, W, C] at the run's training size -> latents and scores after 0 and K steps.
    encoder: values [B, N, C] (numpy) -> latents [B, D]; default the run's own (torch)."""
    values = run.to_values(images)  # [B, N, C]
    coords = grid(*run.cfg.size, run.device)
    z0s, zs = [], []
    for i in range(0, values.shape[0], batch):
        v = values[i:i + batch]
        with torch.no_grad():
            z0 = (encoder(v.cpu().numpy()).to(run.device) if encoder is not None
                  else run.model.encode(coords, v))
        z0s.append(z0)
        zs.append(refine(run.model, coords, v, z0, refine_steps, lr) if refine_steps else z0)
    z0, z = torch.cat(z0s), torch.cat(zs)
    scores0 = image_scores(run.render(z0), images)
    scores = image_scores(run.render(z), images) if refine_steps else scores0
    return FitResult(list(names), z0.cpu(), z.cpu(), scores0, scores, refine_steps)
