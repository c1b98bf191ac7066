"""The implicit GON: a SIREN decoder and its gradient-origin encoder.

A signal x sampled at coordinates c gets the latent of `inner_steps` steps of the run's step
rule from z0 = 0 (origin.py, the engine: gradient, learned or Gauss-Newton); training
back-propagates through the steps. `detach_inner` (an ablation) stops back-propagation
through them.

Variational GON. With the gradient step, as the paper's Variational-GON.py: the step is taken
on the ELBO through linear heads, (mu, logvar) = heads(z0), reparameterised, with the KL in the
inner loss too (`origin.variational_step`); the resulting latent goes through the heads again
for the outer ELBO. With the Gauss-Newton step: the Laplace posterior at the step damped by
the ELBO's own lambda = C x kl_weight (`laplace.py`), covariance lambda (H + lambda I)^-1
(H + lambda P with a grid prior of precision P, --prior-length).

Observed inputs (issue 13): a signal may be observed through the box average A of its fine
points (`origin.Observation`); the step then fits A F(c_fine, z) to what was observed. With
--observe-scales each training batch also encodes views box-downsampled by each factor,
decoded and scored at full resolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.fields import observe_scales
from inr_gon.models.base import SirenModel, step_outputs
from inr_gon.models.laplace import (
    LaplaceStep,
    grid_prior,
    laplace_posterior,
    laplace_sample,
)
from inr_gon.models.origin import (
    POINTS,
    Observation,
    OriginStep,
    gradient_origin,
    inner_steps,
    kl_normal,
    variational_step,
)
from inr_gon.models.render import box_downsample, box_grid


def inner_kl_weight(cfg: Config) -> float:
    """The KL weight of the inner ELBO: C x kl_weight, as inner_loss sums the C channels while
    the outer loss averages them, so inner = C x outer per signal."""
    return cfg.out_dim * cfg.net.kl_weight


def takes_laplace(cfg: Config) -> bool:
    """The variational Gauss-Newton step (its Laplace posterior) rather than the paper's."""
    return cfg.net.variational and cfg.net.origin_step == "gauss-newton"


class GON(SirenModel):
    """Implicit GON: a SIREN decoder, its gradient-origin encoder (the step rule `origin`, with
    parameters for learned and gauss-newton steps), an optional variational head."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        size = self.decoder.latent_size
        self.laplace = takes_laplace(cfg)
        self.origin = (LaplaceStep(inner_kl_weight(cfg), grid_prior(cfg)) if self.laplace
                       else OriginStep(cfg.net.origin_step, size))
        if cfg.net.variational and not self.laplace:  # the paper's VGON: z -> (mu, log sigma^2)
            self.to_mu = nn.Linear(size, size)
            self.to_logvar = nn.Linear(size, size)

    @staticmethod
    def check(cfg: Config) -> None:
        """The variational step: the paper's (gradient) or the Laplace one (gauss-newton), which
        takes one step from the origin."""
        net = cfg.net
        if net.variational and net.origin_step not in ("gradient", "gauss-newton"):
            raise InputError(f"--variational takes --origin-step gradient or gauss-newton, not "
                             f"{net.origin_step}")
        if takes_laplace(cfg) and net.inner_steps != 1:
            raise InputError("--variational with --origin-step gauss-newton takes one inner step "
                             "(the Laplace posterior at the origin's step)")
        if net.prior_length and not (takes_laplace(cfg) and net.latent_grid):
            raise InputError("--prior-length is the prior of --variational with --origin-step "
                             "gauss-newton on a latent grid (--latent-grid G)")

    def posterior(self, coords: Tensor, values: Tensor, generator: torch.Generator | None = None,
                  sample: bool = False, obs: Observation = POINTS) -> tuple[Tensor, Tensor | None]:
        """(mean, log-variance or None) of each signal's latent [B, D]. values [B, N / box, C]
        observe the fine points coords through obs. sample: draw the inner step's
        reparameterisation noise (training), else use the mean."""
        net = self.cfg.net
        if not net.variational or self.laplace:  # the Laplace posterior's mean is the step
            z = gradient_origin(self.decoder, coords, values, net.inner_steps, self.origin, obs)
            return (z.detach() if net.detach_inner else z), None
        eps = _normal(values.shape[0], self.cfg.latent_size, values, generator) if sample else None
        heads, kl_scale = (self.to_mu, self.to_logvar), inner_kl_weight(self.cfg)
        z = inner_steps(lambda z: variational_step(self.origin, self.decoder, heads, coords, values,
                                                   z, eps, kl_scale, obs), net.inner_steps)
        z = z.detach() if net.detach_inner else z
        return self.to_mu(z), self.to_logvar(z)

    def encode(self, coords: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
        """The latent to decode: the posterior mean. [B, D]."""
        return self.posterior(coords, values, obs=obs)[0]

    def forward(self, coords: Tensor, values: Tensor,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The training step's outputs; with --observe-scales, the mean over the views of the
        losses, each view's latent scored against the full-resolution values."""
        outs = [self.view_step(coords, values, s, generator)
                for s in observe_scales(self.cfg.train.observe_scales)]
        if len(outs) == 1:
            return outs[0]
        mean = {k: torch.stack([o[k] for o in outs]).mean() for k in ("loss", "rec", "kl", "mse")}
        return {**outs[0], **mean}  # pred and z: the first view's

    def view_step(self, coords: Tensor, values: Tensor, scale: int,
                  generator: torch.Generator | None) -> dict[str, Tensor]:
        """Encode the view box-downsampled by `scale` (coords: the whole training grid [N, 2],
        row-major; scale 1: the values as given), decode at coords, score against values."""
        if scale == 1:
            fine, seen = coords, values
        else:
            (h, w), c = self.cfg.size, values.shape[-1]
            fine = box_grid(h // scale, w // scale, scale).to(coords)
            seen = box_downsample(values.reshape(-1, h, w, c), scale).flatten(1, 2)
        if self.laplace:
            post = laplace_posterior(self.origin, self.decoder, fine, seen, Observation(scale * scale))
            mu, chol, lam = (t.detach() for t in post) if self.cfg.net.detach_inner else post
            z = laplace_sample(mu, chol, lam, _normal(*mu.shape, mu, generator))
            return step_outputs(self.decoder(coords, z), values, z, self.cfg,
                                self.origin.kl(mu, chol, lam).mean())
        mu, logvar = self.posterior(fine, seen, generator, sample=True,
                                    obs=Observation(scale * scale))
        z, kl = mu, values.new_zeros(())
        if logvar is not None:
            z = mu + _normal(*mu.shape, mu, generator) * torch.exp(0.5 * logvar)
            kl = kl_normal(mu, logvar).mean()
        return step_outputs(self.decoder(coords, z), values, z, self.cfg, kl)


def _normal(b: int, d: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn((b, d), generator=generator, device=like.device, dtype=like.dtype)
