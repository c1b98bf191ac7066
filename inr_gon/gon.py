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
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inr_gon.config import Config
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


def latent_explicit(decoder: Siren, coords: Tensor, values: Tensor,
                    z0: Tensor | None = None) -> Tensor:
    """As latent_autograd, with the backward pass written out. coords [B, N, d] or [N, d]."""
    n = values.shape[-2]
    pre1 = decoder.first(coords)
    if z0 is not None:
        pre1 = pre1 + decoder.shift(z0)
    pre1 = pre1.expand(values.shape[0], *pre1.shape[-2:])
    _, g = decoder.trunk_vjp(pre1, lambda pred: (2.0 / n) * (pred - values))  # dL/dpre1
    grad = g.sum(-2) @ decoder.latent.weight  # [B, H] @ [H, D]: pre1 = ... + z Wz^T
    return -grad if z0 is None else z0 - grad


def latent_shared_grid(decoder: Siren, coords: Tensor, values: Tensor) -> Tensor:
    """coords [N, d] shared by the batch, values [B, N, C] -> z [B, D] at z0 = 0."""
    n, c = values.shape[-2:]
    eye = torch.eye(c, dtype=values.dtype, device=values.device)
    # One cotangent per output channel: G[k] = dF_k/dpre1, [C, N, H].
    f0, g = decoder.trunk_vjp(decoder.first(coords), lambda pred: eye[:, None, :].expand(c, n, c))
    jac = g @ decoder.latent.weight  # dF_k/dz  [C, N, D]
    residual = (2.0 / n) * (values - f0)  # -dL/dF  [B, N, C]
    return torch.einsum("bnc,cnd->bd", residual, jac)


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

    def posterior(self, coords: Tensor, values: Tensor) -> tuple[Tensor, Tensor | None]:
        """(mean, log-variance or None) of each signal's latent. values [B, N, C]."""
        z = gradient_origin(self.decoder, coords, values, self.cfg.inner_steps)
        if not self.cfg.variational:
            return z, None
        return self.to_mu(z), self.to_logvar(z)

    def encode(self, coords: Tensor, values: Tensor) -> Tensor:
        """The latent to decode: the posterior mean. [B, D]."""
        return self.posterior(coords, values)[0]

    def decode(self, coords: Tensor, z: Tensor) -> Tensor:
        return self.decoder(coords, z)

    def forward(self, coords: Tensor, values: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        mu, logvar = self.posterior(coords, values)
        z, kl = mu, values.new_zeros(())
        if logvar is not None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1).mean()
        pred = self.decoder(coords, z)
        rec = outer_loss(pred, values, self.cfg)
        return {"loss": rec + self.cfg.kl_weight * kl, "rec": rec, "kl": kl,
                "mse": (pred.detach() - values).pow(2).mean(), "pred": pred, "z": z}


def outer_loss(pred: Tensor, target: Tensor, cfg: Config) -> Tensor:
    """Images: mean squared error. SDF: DeepSDF's clamped L1."""
    if cfg.modality == "sdf":
        d = cfg.sdf_clamp
        return (pred.clamp(-d, d) - target.clamp(-d, d)).abs().mean()
    return (pred - target).pow(2).mean()
