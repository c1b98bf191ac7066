"""Refinement of shape latents after the gradient-origin step: DeepSDF's test-time schedule.

DeepSDF (facebookresearch/DeepSDF, reconstruct.py) fits a new shape's latent with Adam at
lr 5e-3, divided by 10 halfway, on the clamped L1 of fresh SDF samples each step (8,000 of
them) plus a small latent penalty (1e-4 x mean z^2), for 800 steps from a near-zero latent.
Here the same schedule starts from the gradient-origin latent, which is already the shape's
rough latent, so far fewer steps are needed (benchmarks/shapes.py reports IoU per step
count). Fresh samples each step, rather than one fixed subset, keep the latent from
over-fitting the few thousand points it would otherwise see again and again.

Each shape's latent depends on its own samples only: the loss is a sum over shapes, Adam
works per coordinate, and every shape draws the same sample indices into its own pool (all
pools have the same size), so refining a shape alone or among others gives the same latent.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from inr_gon.inference.fit import REFINE_LR
from inr_gon.models.base import clamped_l1
from inr_gon.training.sdf import ENCODE_POINTS, encode_shapes, fixed_subset

# DeepSDF's is 5e-3; 1e-2 (the image refinement's too) fitted better from the gradient-origin
# latent. Mean IoU of 3 held-out shapes of short (150-step) builtin:shapes3d runs after
# 10 / 30 / 100 steps at lr 5e-3, 1e-2, 3e-2: with the mesh folders' 4^3 x 16 latent grid
# 0.557/0.698/0.805, 0.584/0.706/0.820, 0.325/0.591/0.805 (3e-2 overshoots early); with a
# 32-d vector latent at 30 steps 0.593, 0.607, 0.604. --refine-lr overrides.
SDF_REFINE_LR = REFINE_LR
LATENT_PENALTY = 1e-4  # x mean(z^2) per shape, as DeepSDF's l2reg
REFINE_POINTS = 8192  # fresh samples per shape and step (DeepSDF: 8,000)


def lr_at(step: int, steps: int, lr: float, spent: float = 0.0) -> float:
    """The step's learning rate: lr for the first half of the steps (rounded up) and of the time
    budget (`spent`: its share used), lr / 10 after."""
    return lr if step < (steps + 1) // 2 and spent < 0.5 else lr / 10


def refine_shapes(model, points: Tensor, sdf: Tensor, z0: Tensor, steps: int, clamp: float,
                  lr: float = SDF_REFINE_LR, device: torch.device | str = "cpu",
                  n: int = REFINE_POINTS, penalty: float = LATENT_PENALTY, seed: int = 0,
                  batch: int = 16, losses: list[float] | None = None,
                  seconds: float | None = None) -> Tensor:
    """Latents [S, D] after `steps` Adam steps from z0 [S, D] on each shape's clamped L1 over n
    fresh samples a step of its pool (points [S, P, 3], sdf [S, P, 1]), weights frozen.
    losses, if given, receives the mean clamped L1 of each step (of the last batch of shapes
    when there are more than `batch`). seconds: a time budget for all shapes (each batch its
    share): refinement ends when it is spent, the lr drop comes at half of it (or of the
    steps, whichever is first); the result then depends on the machine's speed."""
    out, total = [], points.shape[0]
    for i in range(0, total, batch):
        if losses is not None:
            losses.clear()  # one curve: the last batch's
        share = None if seconds is None else seconds * min(batch, total - i) / total
        out.append(_refine_batch(model, points[i:i + batch], sdf[i:i + batch],
                                 z0[i:i + batch].to(device), steps, clamp, lr, device, n,
                                 penalty, seed, losses, share).cpu())
    return torch.cat(out) if out else z0.clone()


def _refine_batch(model, points: Tensor, sdf: Tensor, z0: Tensor, steps: int, clamp: float,
                  lr: float, device, n: int, penalty: float, seed: int,
                  losses: list[float] | None, seconds: float | None = None) -> Tensor:
    g = torch.Generator().manual_seed(seed)  # the same stream for every batch: see module note
    pool = points.shape[1]
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    t0 = time.perf_counter()
    with torch.enable_grad():
        for step in range(steps):
            spent = (time.perf_counter() - t0) / seconds if seconds else 0.0
            if spent >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, steps, lr, spent)
            pick = torch.randint(pool, (min(n, pool),), generator=g)
            p, d = points[:, pick].to(device), sdf[:, pick].to(device)  # [B, n, 3], [B, n, 1]
            fit = clamped_l1(model.decode(p, z), d, clamp)  # [B]
            loss = (fit + penalty * z.pow(2).mean(-1)).sum()
            (z.grad,) = torch.autograd.grad(loss, z)  # weights get no .grad
            opt.step()
            if losses is not None:
                losses.append(float(fit.detach().mean()))
    return z.detach()


def shape_latents(model, points: Tensor, sdf: Tensor, clamp: float, refine_steps: int = 0,
                  lr: float = SDF_REFINE_LR, device: torch.device | str = "cpu",
                  n: int = ENCODE_POINTS, batch: int = 16,
                  losses: list[float] | None = None,
                  seconds: float | None = None) -> tuple[Tensor, Tensor]:
    """(z0, z) [S, D]: the gradient-origin latents of shapes (points [S, P, 3], sdf [S, P, 1])
    from a fixed n of their points, and the same after refine_steps latent-only Adam steps on
    fresh samples of all P (DeepSDF's schedule: shape_refine.refine_shapes), within `seconds`
    of refinement if given."""
    p, d = fixed_subset(points, sdf, n)
    z0 = encode_shapes(model, p, d, device, n, batch)
    if not refine_steps:
        return z0, z0
    return z0, refine_shapes(model, points, sdf, z0, refine_steps, clamp, lr, device,
                             batch=batch, losses=losses, seconds=seconds)
