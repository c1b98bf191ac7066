"""The gradient-origin latent and the GON losses.

A signal x sampled at coordinates c gets the latent z = -dL/dz0 at z0 = 0, where L is its
reconstruction loss under the decoder F; training back-propagates through that step.

The inner loss of a signal is its own sum of squared errors over channels, divided by its
number of points: it never mixes batch-mates (the reference code's batch mean made a latent
depend on the batch size), and a latent does not change scale with the number of points (a
random subset per step, or a different resolution, gives the same expected latent).

Three ways to take the step, equal up to rounding (tests check it):
- `latent_autograd`: the reference, autograd.grad with create_graph=True.
- `latent_explicit`: the same gradient written out (Siren.trunk_vjp), for per-signal coords.
- `latent_shared_grid`: at z0 = 0 neither F(c, 0) nor J = dF/dz(c, 0) depends on the signal,
  so z = (2/N) J^T (x - F(c, 0)) is affine in x; a batch sharing one grid pays for F(c, 0)
  and J once (C backward passes over N points, not B).

Variational GON (`variational_step`), as the paper's Variational-GON.py: the step is taken on
the ELBO through linear heads, (mu, logvar) = heads(z0), reparameterised, with the KL in the
inner loss too; the resulting latent goes through the heads again for the outer ELBO.
`detach_inner` (an ablation) stops back-propagation through the step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from inr_gon.config import Config
from inr_gon.render import DEFAULT_MAX_MEMORY, render_images
from inr_gon.siren import Siren


def inner_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Per-signal loss [..., N, C] -> [...]: sum over channels, mean over points."""
    return (pred - target).pow(2).sum(-1).mean(-1)


def latent_autograd(decoder: Siren, coords: Tensor, values: Tensor, z0: Tensor | None = None,
                    create_graph: bool = True) -> Tensor:
    """coords [B, N, d] (or [N, d]), values [B, N, C] -> z = z0 - dL/dz0  [B, D]."""
    if z0 is None:
        z0 = values.new_zeros(values.shape[0], decoder.latent.in_features)
    with torch.enable_grad():
        z0 = z0 if z0.requires_grad else z0.detach().requires_grad_(True)
        # Summing per-signal losses keeps each signal's gradient its own.
        loss = inner_loss(decoder(coords, z0), values).sum()
        (grad,) = torch.autograd.grad(loss, z0, create_graph=create_graph)
    return z0 - grad


def latent_grad(decoder: Siren, coords: Tensor, values: Tensor, z: Tensor) -> Tensor:
    """dL/dz of each signal's inner loss at latents z [B, D], backward pass written out.
    coords [B, N, d] or [N, d], values [B, N, C] -> [B, D]."""
    n = values.shape[-2]
    pre1 = decoder.first(coords) + decoder.shift(z)
    pre1 = pre1.expand(values.shape[0], *pre1.shape[-2:])
    _, g = decoder.trunk_vjp(pre1, lambda pred: (2.0 / n) * (pred - values))  # dL/dpre1
    return g.sum(-2) @ decoder.latent.weight  # [B, H] @ [H, D]: pre1 = ... + z Wz^T


def latent_explicit(decoder: Siren, coords: Tensor, values: Tensor,
                    z0: Tensor | None = None) -> Tensor:
    """As latent_autograd, with the backward pass written out. coords [B, N, d] or [N, d]."""
    if z0 is None:
        z0 = values.new_zeros(values.shape[0], decoder.latent.in_features)
    return z0 - latent_grad(decoder, coords, values, z0)


def shared_grid_grad(decoder: Siren, coords: Tensor, values: Tensor,
                     z0: Tensor | None = None) -> Tensor:
    """dL/dz at a z0 [D] shared by the batch (default 0): coords [N, d], values [B, N, C] ->
    [B, D]. F(c, z0) and its Jacobian are then signal-independent, so they are paid for once."""
    n, c = values.shape[-2:]
    eye = torch.eye(c, dtype=values.dtype, device=values.device)
    pre1 = decoder.first(coords) if z0 is None else decoder.first(coords) + decoder.latent(z0)
    # One cotangent per output channel: G[k] = dF_k/dpre1, [C, N, H].
    f0, g = decoder.trunk_vjp(pre1, lambda pred: eye[:, None, :].expand(c, n, c))
    jac = g @ decoder.latent.weight  # dF_k/dz  [C, N, D]
    residual = (2.0 / n) * (f0 - values)  # dL/dF  [B, N, C]
    return torch.einsum("bnc,cnd->bd", residual, jac)


def latent_shared_grid(decoder: Siren, coords: Tensor, values: Tensor,
                       z0: Tensor | None = None) -> Tensor:
    """coords [N, d] shared by the batch, values [B, N, C] -> z [B, D], one step from z0 [D]."""
    grad = shared_grid_grad(decoder, coords, values, z0)
    return -grad if z0 is None else z0 - grad


def gradient_origin(decoder: Siren, coords: Tensor, values: Tensor, steps: int = 1) -> Tensor:
    """The latent of each signal: one step from zero (shared-grid form when coords is [N, d]),
    then steps-1 further steps with the explicit form."""
    if coords.dim() == 2:
        z = latent_shared_grid(decoder, coords, values)
    else:
        z = latent_explicit(decoder, coords, values)
    for _ in range(steps - 1):
        z = latent_explicit(decoder, coords, values, z0=z)
    return z


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per signal: [B, D] -> [B]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def inner_kl_weight(cfg: Config) -> float:
    """The KL weight of the inner ELBO: C x kl_weight, as inner_loss sums the C channels while
    the outer loss averages them, so inner = C x outer per signal."""
    return cfg.out_dim * cfg.kl_weight


def heads_grad(to_mu: nn.Linear, to_logvar: nn.Linear, mu0: Tensor, logvar0: Tensor, g: Tensor,
               eps: Tensor | None, kl_scale: float) -> Tensor:
    """dL/dz0 of the inner ELBO through the linear heads (mu0, logvar0) = heads(z0), given
    g = dL_rec/dz_in [B, D] at the decoder input z_in = mu0 + eps * sigma0 (mu0 if eps is None).
    Linear in g: the exported grid encoder folds it into one affine map."""
    std0 = torch.exp(0.5 * logvar0)
    g_mu = g + kl_scale * mu0  # dL/dmu
    g_logvar = kl_scale * 0.5 * (std0.pow(2) - 1.0)  # dL/dlogvar
    if eps is not None:
        g_logvar = g_logvar + 0.5 * g * eps * std0
    return g_mu @ to_mu.weight + g_logvar @ to_logvar.weight


def variational_step(decoder: Siren, to_mu: nn.Linear, to_logvar: nn.Linear, coords: Tensor,
                     values: Tensor, z0: Tensor | None, eps: Tensor | None,
                     kl_scale: float) -> Tensor:
    """One step on the paper's inner ELBO (its Variational-GON.py): from z0 [B, D] (None = the
    origin), z = z0 - dL/dz0 with (mu, logvar) = heads(z0) and
        L(z0) = inner_loss(F(c, mu + eps * sigma), x) + kl_scale * KL(N(mu, sigma^2) || N(0, I)).
    The heads are linear, so the chain rule through them is written out. eps [B, D], or None for
    the posterior mean (inference): from the origin the decoder input b_mu is then shared by the
    batch and the shared-grid form applies."""
    origin = z0 is None
    if origin:
        z0 = values.new_zeros(1, to_mu.in_features)
    mu0, logvar0 = to_mu(z0), to_logvar(z0)  # [1 or B, D]
    if eps is None and origin and coords.dim() == 2:
        g = shared_grid_grad(decoder, coords, values, mu0[0])  # dL_rec/dz_in  [B, D]
    else:
        z_in = mu0 if eps is None else mu0 + eps * torch.exp(0.5 * logvar0)
        g = latent_grad(decoder, coords, values, z_in.expand(values.shape[0], -1))
    return z0 - heads_grad(to_mu, to_logvar, mu0, logvar0, g, eps, kl_scale)


class GON(nn.Module):
    """Implicit GON: a SIREN decoder, its gradient-origin encoder, an optional variational head."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.decoder = Siren(cfg.coord_dim, cfg.latent_dim, cfg.out_dim, cfg.hidden, cfg.layers,
                             cfg.w0, cfg.w0_hidden, cfg.latent_init)
        if cfg.variational:  # the paper's VGON: z -> (mu, log sigma^2), reparameterised
            self.to_mu = nn.Linear(cfg.latent_dim, cfg.latent_dim)
            self.to_logvar = nn.Linear(cfg.latent_dim, cfg.latent_dim)

    def posterior(self, coords: Tensor, values: Tensor, generator: torch.Generator | None = None,
                  sample: bool = False) -> tuple[Tensor, Tensor | None]:
        """(mean, log-variance or None) of each signal's latent. values [B, N, C]. sample: draw
        the inner step's reparameterisation noise (training), else use the mean."""
        cfg = self.cfg
        if not cfg.variational:
            z = gradient_origin(self.decoder, coords, values, cfg.inner_steps)
            return (z.detach() if cfg.detach_inner else z), None
        eps = _normal(values.shape[0], cfg.latent_dim, values, generator) if sample else None
        kl_scale, z = inner_kl_weight(cfg), None
        for _ in range(cfg.inner_steps):
            z = variational_step(self.decoder, self.to_mu, self.to_logvar, coords, values, z, eps,
                                 kl_scale)
        z = z.detach() if cfg.detach_inner else z
        return self.to_mu(z), self.to_logvar(z)

    def encode(self, coords: Tensor, values: Tensor) -> Tensor:
        """The latent to decode: the posterior mean. [B, D]."""
        return self.posterior(coords, values)[0]

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        return self.decoder(coords, z)

    def render(self, z: Tensor, height: int, width: int,
               max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Latents [B, D] -> images [B, H, W, C] at any size, in bounded memory."""
        return render_images(self.decoder, z, height, width, max_memory)

    def forward(self, coords: Tensor, values: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        mu, logvar = self.posterior(coords, values, generator, sample=True)
        z, kl = mu, values.new_zeros(())
        if logvar is not None:
            z = mu + _normal(*mu.shape, mu, generator) * torch.exp(0.5 * logvar)
            kl = kl_normal(mu, logvar).mean()
        return step_outputs(self.decoder(coords, z), values, z, self.cfg, kl)


def _normal(b: int, d: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn((b, d), generator=generator, device=like.device, dtype=like.dtype)


def step_outputs(pred: Tensor, values: Tensor, z: Tensor, cfg: Config,
                 kl: Tensor | None = None) -> dict[str, Tensor]:
    """What a model's forward returns to the training loop; kl None: no variational term."""
    rec = outer_loss(pred, values, cfg)
    loss = rec if kl is None else rec + cfg.kl_weight * kl
    return {"loss": loss, "rec": rec, "kl": values.new_zeros(()) if kl is None else kl,
            "mse": (pred.detach() - values).pow(2).mean(), "pred": pred, "z": z}


def outer_loss(pred: Tensor, target: Tensor, cfg: Config) -> Tensor:
    """Images: mean squared error. SDF: DeepSDF's clamped L1."""
    if cfg.modality == "sdf":
        return clamped_l1(pred, target, cfg.sdf_clamp).mean()
    return (pred - target).pow(2).mean()


def clamped_l1(pred: Tensor, target: Tensor, clamp: float) -> Tensor:
    """DeepSDF's clamped L1 of each shape: [..., N, 1] -> [...] (mean over its points)."""
    return (pred.clamp(-clamp, clamp) - target.clamp(-clamp, clamp)).abs().mean((-2, -1))
