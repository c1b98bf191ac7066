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

A prior over a latent grid (`--prior-length`) may instead correlate neighbouring cells: N(0, P^-1)
with P = R R^T (`grid_prior`), so the system is H + lambda P, and the KL has |R^T mu|^2,
lambda |L^-1 R|_F^2 and - log |P|. N(0, I) draws each cell apart, a patchwork.
"""

from __future__ import annotations

import torch
from torch import Tensor

from inr_gon.config import Config
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

    def __init__(self, prior: float, root: Tensor | None = None) -> None:
        super().__init__("gauss-newton")
        del self.rho
        self.prior = prior
        # R of the prior's precision P = R R^T, and P; None for N(0, I). From the config, not saved
        self.register_buffer("root", root, persistent=False)
        self.register_buffer("precision", None if root is None else root @ root.mT, persistent=False)
        self.log_det_prior = 0.0 if root is None else prior_log_det(root)  # log |P|, a constant

    def damping(self, scale: Tensor) -> Tensor:
        return self.prior + DAMPING_FLOOR * scale + ABS_FLOOR

    def metric(self, like: Tensor) -> Tensor:
        """The prior's precision P = R R^T [D, D]."""
        return super().metric(like) if self.precision is None else self.precision.to(like)

    def kl(self, mu: Tensor, chol: Tensor, lam: Tensor) -> Tensor:
        """KL(q || this step's prior) per signal [B] (`laplace_kl`), log |P| computed once."""
        return laplace_kl(mu, chol, lam, self.root, self.log_det_prior)


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


def laplace_kl(mu: Tensor, chol: Tensor, lam: Tensor, root: Tensor | None = None,
               log_det_p: float | None = None) -> Tensor:
    """KL(N(mu, Sigma) || N(0, P^-1)) per signal [B]; P = R R^T, root R [D, D] (None: P = I),
    log_det_p = log |P| where the caller holds it (else computed here)."""
    d = mu.shape[-1]
    r = torch.eye(d, dtype=chol.dtype, device=chol.device) if root is None else root.to(chol)
    trace = lam * torch.linalg.solve_triangular(chol, r, upper=False).pow(2).sum((-2, -1))
    log_det = d * torch.log(lam) - 2 * torch.log(chol.diagonal(dim1=-2, dim2=-1)).sum(-1)
    if log_det_p is None:
        log_det_p = 0.0 if root is None else prior_log_det(root)
    return 0.5 * ((mu @ r).pow(2).sum(-1) + trace - d - log_det - log_det_p)


def prior_log_det(root: Tensor) -> float:
    """log |R R^T| of a prior's root R [D, D]."""
    return 2 * float(torch.linalg.slogdet(root.detach().double())[1])


def grid_prior(cfg: Config) -> Tensor | None:
    """R [D, D], R R^T the precision of a Matern field over the latent grid's cells (a GMRF,
    Lindgren, Rue and Lindstrom 2011: P = c Q^2, Q = I + l^2 Lap, Lap the cells' graph
    Laplacian, l = --prior-length, smoothness nu = 1 in 2D, correlation about 0.1 at sqrt(8) l
    cells), each latent channel its own field, c so the mean prior variance is 1; None for
    N(0, I) (l = 0, or no grid)."""
    g, length = cfg.net.latent_grid, cfg.net.prior_length
    if length == 0 or g == 0:
        return None
    adj = torch.diag(torch.ones(g - 1, dtype=torch.float64), 1)
    adj = adj + adj.T  # a row of g cells, neighbours joined
    path, eye = torch.diag(adj.sum(1)) - adj, torch.eye(g, dtype=torch.float64)
    lap = sum(_kron_axis(path, eye, k, cfg.coord_dim) for k in range(cfg.coord_dim))
    q = torch.eye(lap.shape[0], dtype=torch.float64) + length**2 * lap
    c = torch.linalg.inv(q @ q).diagonal().mean()
    root = torch.kron(c.sqrt() * q, torch.eye(cfg.net.latent_dim, dtype=torch.float64))
    return root.float()  # cell-major: index = cell * latent_dim + channel, as the grid lays z out


def _kron_axis(m: Tensor, eye: Tensor, axis: int, dims: int) -> Tensor:
    """m acting on one axis of a dims-axis grid, the identity on the others (row-major)."""
    out = torch.ones(1, 1, dtype=m.dtype)
    for k in range(dims):
        out = torch.kron(out, m if k == axis else eye)
    return out


def prior_draw(root: Tensor | None, eps: Tensor) -> Tensor:
    """Latents [n, D] from the prior N(0, P^-1) given eps ~ N(0, I): R^-T eps."""
    if root is None:
        return eps
    return torch.linalg.solve(root.mT.to(eps), eps.mT).mT
