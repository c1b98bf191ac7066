"""The variational Gauss-Newton step: a Laplace posterior at the damped Gauss-Newton step.

The outer loss, MSE + beta KL(q || N(0, I)) per signal (M points, C channels), is the ELBO of a
Gaussian likelihood of variance s^2 = beta M C / 2. The inner loss L (channels summed, points
averaged) is then the negative log-likelihood times 2 s^2 / M = C beta = lambda, so the damped
Gauss-Newton step on L with that lambda is the posterior's mode under the N(0, I) prior (the
paper's inner ELBO, its KL term included), and Laplace's approximation around it is

    q(z | x) = N(mu, Sigma),   mu = -(H + lambda I)^-1 g,   Sigma = lambda (H + lambda I)^-1,

with H = (2/M) (AJ)^T AJ and g the inner gradient at the origin (origin.py). Directions the data
pin down (an eigenvalue h of H >> lambda) get variance lambda / h, unobserved ones keep the
prior's 1. No heads and no new constant: lambda is C x --kl-weight (plus the Gauss-Newton
rule's float32 floor), not learned, since a learned lambda would also be the noise's
temperature. Encoding, fitting and export take the step with that damping (`LaplaceStep`).
H + lambda I = L L^T is factorised once per batch on one grid (J is shared at the origin), once
per signal otherwise, so
    mu = -L^-T L^-1 g,  a sample mu + sqrt(lambda) L^-T eps,  and
    KL(q || N(0, I)) = (|mu|^2 + lambda |L^-1|_F^2 - D - D log lambda + 2 sum log diag L) / 2.
"""

from __future__ import annotations

import torch
from torch import Tensor

from inr_gon.models.origin import (
    ABS_FLOOR,
    DAMPING_FLOOR,
    POINTS,
    Observation,
    OriginStep,
    gauss_newton_matrix,
    linearised,
)
from inr_gon.models.siren import Siren, full_precision


class LaplaceStep(OriginStep):
    """The Gauss-Newton rule at the inner ELBO's damping lambda = prior (C x kl_weight) plus
    the rule's floor, relative to mean(diag H) as there: fixed, not learned."""

    def __init__(self, prior: float) -> None:
        super().__init__("gauss-newton")
        del self.rho
        self.prior = prior

    def damping(self, scale: Tensor) -> Tensor:
        return self.prior + DAMPING_FLOOR * scale + ABS_FLOOR


def laplace_posterior(rule: OriginStep, decoder: Siren, coords: Tensor, values: Tensor,
                      obs: Observation = POINTS) -> tuple[Tensor, Tensor, Tensor]:
    """(mu [B, D], L [D, D] with L L^T = H + lambda I, lambda []) at the origin for one grid
    coords [N, d] shared by the batch; per-signal coords [B, N, d] give L [B, D, D] and
    lambda [B]. values [B, N / box, C]."""
    with full_precision(values):  # the Jacobian, H, its factor and the solves
        grad, weights, v = linearised(decoder, coords, values, values.new_zeros(decoder.latent_size), obs)
        chol, lam = rule.factor(gauss_newton_matrix(weights, v, obs))  # [(B,) D, D], [(B,)]
        mu = -torch.cholesky_solve(grad[..., None], chol)[..., 0]
    return mu, chol, lam


def laplace_sample(mu: Tensor, chol: Tensor, lam: Tensor, eps: Tensor) -> Tensor:
    """mu + sqrt(lambda) L^-T eps [B, D]: covariance lambda L^-T L^-1 = Sigma."""
    x = torch.linalg.solve_triangular(chol.mT, eps[..., None].to(chol.dtype), upper=True)[..., 0]
    return mu + lam[..., None].sqrt() * x


def laplace_kl(mu: Tensor, chol: Tensor, lam: Tensor) -> Tensor:
    """KL(N(mu, Sigma) || N(0, I)) per signal [B]."""
    d = mu.shape[-1]
    eye = torch.eye(d, dtype=chol.dtype, device=chol.device)
    trace = lam * torch.linalg.solve_triangular(chol, eye, upper=False).pow(2).sum((-2, -1))
    log_det = d * torch.log(lam) - 2 * torch.log(chol.diagonal(dim1=-2, dim2=-1)).sum(-1)
    return 0.5 * (mu.pow(2).sum(-1) + trace - d - log_det)
