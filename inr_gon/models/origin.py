"""The latent-step engine: every gradient-origin step of the package is taken here.

A signal x sampled at coordinates c gets the latent z = z0 - P dL/dz0 from z0 = 0, L its inner
loss under the decoder F and P the step rule's preconditioner (`OriginStep`); training
back-propagates through the step. A signal's inner loss is its sum of squared errors over
channels per observed point: it never mixes batch-mates, nor scales with the point count.

The parts, each written once:
- `Observation` A: what was observed of the signal F(c) at the fine points c (the identity, or
  the box average of k consecutive fine points per observed value, issue 13), and its adjoint.
- `residual`: dL/dF = A^T 2 (A F - x) / M, M observed values per signal.
- the Jacobian products: `gradient` (J^T of the residual: written-out backward per signal, or
  paid for once when z0 and c are shared), `jacobian` (J's factors, C backward passes),
  `linearised` (both, for Gauss-Newton), `gauss_newton_matrix` H = (2/M) (AJ)^T (AJ).
- `OriginStep`: the rule (gradient: the paper; learned: Meta-SGD step sizes; gauss-newton: the
  damped Gauss-Newton solve; gauss-newton-cg: per-signal solves by CG, `gauss_newton.py`).
- `inner_steps`: the loop of steps from the origin; `variational_step`: the paper's Variational-GON
  step on the ELBO through linear heads; `origin_affine`: the first step on one grid as an affine
  map of the observed values (ONNX); `latent_autograd`: the step by autograd.grad (convolutional GON).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from inr_gon.config import ORIGIN_STEPS
from inr_gon.models.cells import Weights, dense
from inr_gon.models.gauss_newton import damped_solve
from inr_gon.models.siren import Siren, full_precision, grid_gram, grid_jacobian, grid_jacobian_t


class Observation:
    """A: each observed value is the mean of `box` consecutive fine points (box 1: the points
    themselves), as `render.box_grid` lays out a pixel's k x k sub-pixel centres (box = k^2)."""

    def __init__(self, box: int = 1) -> None:
        if box < 1:
            raise ValueError(f"an observation averages at least one point, got {box}")
        self.box = box

    def __repr__(self) -> str:
        return f"Observation(box={self.box})"

    def __call__(self, fine: Tensor) -> Tensor:
        """A: [..., M*box, C] -> [..., M, C]."""
        return fine if self.box == 1 else fine.unflatten(-2, (-1, self.box)).mean(-2)

    def adjoint(self, r: Tensor) -> Tensor:
        """A^T: each observed residual spread over its fine points, [..., M, C] -> [..., M*box, C]."""
        return r if self.box == 1 else r.repeat_interleave(self.box, dim=-2) / self.box

    def jacobian(self, j: Tensor) -> Tensor:
        """A J for a dense J [..., M*box, C, D] -> [..., M, C, D]."""
        return j if self.box == 1 else j.unflatten(-3, (-1, self.box)).mean(-3)

    def chunk(self, points: int) -> int:
        """A chunk of about `points` fine points that keeps observed values whole."""
        return max(points // self.box, 1) * self.box


POINTS = Observation()  # the signal observed point by point


def inner_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Per-signal loss [..., N, C] -> [...]: sum over channels, mean over points."""
    return (pred - target).pow(2).sum(-1).mean(-1)


def residual(pred: Tensor, values: Tensor, obs: Observation = POINTS) -> Tensor:
    """dL/dF of the inner loss at fine predictions [..., M*box, C]: A^T 2 (A F - x) / M, M
    read from the shape so an exported graph keeps it dynamic (2.0 / M would be a constant)."""
    return obs.adjoint(2 * (obs(pred) - values) / values.shape[-2])


def latent_grad(decoder: Siren, coords: Tensor, values: Tensor, z: Tensor,
                obs: Observation = POINTS) -> Tensor:
    """dL/dz of each signal's inner loss at latents z [B or 1, D], backward pass written out.
    coords [B or 1, N, d] or [N, d], values [B, N / box, C] -> [B, D]."""
    weights, phase1, later = decoder.phases(coords, z)
    cot = lambda pred: residual(pred, values, obs)  # noqa: E731
    _, grads = decoder.sines_vjp(phase1, later, cot)
    return decoder.latent_vjp(weights, grads)


def jacobian(decoder: Siren, coords: Tensor, z: Tensor) -> tuple[Tensor, Weights, Tensor]:
    """F and the factors of J = dF/dz: coords [N, d] or [B or 1, N, d], z [B or 1, D] ->
    (values [B, N, C], weights [..., N, G^d] or None, v [B, N, C, D]) with
    J[b, n, c] = weights[n] (x) v[b, n, c] (`siren.grid_jacobian`). One cotangent per output
    channel: C backward passes, all sharing one forward pass."""
    c = decoder.out.out_features
    weights, phase1, later = decoder.phases(coords, z)
    eye = torch.eye(c, dtype=phase1.dtype, device=z.device)
    cot = lambda pred: eye.reshape(c, *[1] * (pred.dim() - 1), c)  # noqa: E731  [C, 1.., C]
    f, grads = decoder.sines_vjp(phase1, later, cot)  # grads [C, B, N, H]
    return f, weights, decoder.latent_factor(grads).movedim(0, -2)  # v [B, N, C, D]


def shared_jacobian(decoder: Siren, coords: Tensor, z0: Tensor) -> tuple[Tensor, Weights, Tensor]:
    """(F(c, z0) [N, C], weights [N, G^d] or None, v [N, C, D]) at a z0 [D] shared by every
    signal: `jacobian` once for the whole batch."""
    f0, weights, v = jacobian(decoder, coords, z0[None])
    return f0[0], weights, v[0]


def is_shared(coords: Tensor, z: Tensor) -> bool:
    """One grid coords [N, d] and one z [D] for the batch: F(c, z) and J signal-independent."""
    return coords.dim() == 2 and z.dim() == 1


def gradient(decoder: Siren, coords: Tensor, values: Tensor, z: Tensor,
             obs: Observation = POINTS) -> Tensor:
    """dL/dz [B, D] of each signal at z [D] (shared) or [B, D]: on one grid with a shared z, J
    paid for once (C backward passes, not B); otherwise the written-out backward per signal."""
    if is_shared(coords, z):
        return linearised(decoder, coords, values, z, obs)[0]
    return latent_grad(decoder, coords, values, z.expand(values.shape[0], -1), obs)


def linearised(decoder: Siren, coords: Tensor, values: Tensor, z: Tensor,
               obs: Observation = POINTS) -> tuple[Tensor, Weights, Tensor]:
    """(dL/dz [B, D], J's factors) at z: [D] on one grid, shared (v [N, C, D]); otherwise per
    signal (v [B, N, C, D]), z [D] or [B, D]. What a Gauss-Newton step solves with."""
    if is_shared(coords, z):
        f, weights, v = shared_jacobian(decoder, coords, z)
    else:
        f, weights, v = jacobian(decoder, coords, z.expand(values.shape[0], -1))
    return grid_jacobian_t(weights, v, residual(f, values, obs)), weights, v


def observed_jacobian(weights: Weights, v: Tensor, obs: Observation = POINTS) -> Tensor:
    """A J, dense: [..., N, C, D] factors -> [..., N / box, C, D_total]."""
    return obs.jacobian(grid_jacobian(weights, v))


def gauss_newton_matrix(weights: Weights, v: Tensor, obs: Observation = POINTS) -> Tensor:
    """H = (2/M) (AJ)^T (AJ) of the inner loss from J's factors (v [..., N, C, D], M = N / box
    observed points) -> [..., D, D]. A = I keeps J factored (sparse with a grid); a box
    average mixes the cells of a pixel's fine points, so AJ is formed densely ([M, C, D])."""
    m = v.shape[-3] // obs.box
    if obs.box == 1:
        return grid_gram(weights, v) * (2 / m)
    aj = observed_jacobian(weights, v, obs).flatten(-3, -2)  # [..., M*C, D_total]
    return aj.transpose(-1, -2) @ aj * (2 / m)


DAMPING_INIT = 0.1  # lambda / mean(diag H) at the start (before its floor)
DAMPING_FLOOR = 1e-3  # ... and its floor: cond(H + lambda I) <= D / 1e-3 + 1, float32-safe
ABS_FLOOR = 1e-6  # lambda where H = 0 (a dead decoder): the step stays finite


class OriginStep(nn.Module):
    """How a latent moves given its inner gradient g [..., D]: gradient: z - g (the paper);
    learned: z - alpha * g, alpha [D] trained with the decoder (Meta-SGD, Li et al. 2017; init 1 so
    the first step is the paper's); gauss-newton: z - (H + lambda I)^-1 g with H = (2/M) (AJ)^T AJ,
    lambda = (softplus(rho) + 1e-3) mean(diag H) + 1e-6: relative to H, so it follows the decoder's
    scale, and never singular; gauss-newton-cg: the same, where each signal has its own J
    (per-signal coordinates, later steps) solved by a fixed number of CG iterations without forming
    H (box-averaged observations and a J shared by the batch keep the exact dense solve)."""

    def __init__(self, kind: str = "gradient", size: int = 1) -> None:
        super().__init__()
        if kind not in ORIGIN_STEPS:
            raise ValueError(f"origin step must be one of {ORIGIN_STEPS}, got {kind!r}")
        self.kind = kind
        if kind == "learned":
            self.alpha = nn.Parameter(torch.ones(size))
        elif kind.startswith("gauss-newton"):  # softplus(rho) = DAMPING_INIT
            self.rho = nn.Parameter(torch.tensor(math.log(math.expm1(DAMPING_INIT))))

    @property
    def needs_hessian(self) -> bool:
        return self.kind.startswith("gauss-newton")

    def damping(self, scale: Tensor) -> Tensor:
        """lambda [...] of mean(diag H) [...]."""
        return (F.softplus(self.rho) + DAMPING_FLOOR) * scale + ABS_FLOOR

    def metric(self, like: Tensor) -> Tensor:
        """M [D, D] of H + lambda M: the identity (the Laplace step's grid prior: its precision)."""
        return torch.eye(like.shape[-1], dtype=like.dtype, device=like.device)

    def factor(self, hessian: Tensor) -> tuple[Tensor, Tensor]:
        """(L [..., D, D] with L L^T = H + lambda M, lambda [...]). It is SPD: Cholesky, not LU,
        whose batched CPU solve fails after torch.set_num_threads (pytorch#142815)."""
        lam = self.damping(hessian.diagonal(dim1=-2, dim2=-1).mean(-1))
        return torch.linalg.cholesky(hessian + lam[..., None, None] * self.metric(hessian)), lam

    def precondition(self, grad: Tensor, hessian: Tensor | None = None) -> Tensor:
        """P g for rows grad [..., K, D] (hessian [..., D, D] shared by the rows) or [B, D]."""
        if self.kind == "gradient":
            return grad
        if self.kind == "learned":
            return self.alpha * grad
        return torch.cholesky_solve(grad.mT, self.factor(hessian)[0]).mT  # X (H + lambda M) = g

    def forward(self, decoder: Siren, coords: Tensor, values: Tensor, z: Tensor | None = None,
                obs: Observation = POINTS) -> Tensor:
        """One step from z [B, D] (None: the origin, shared by the batch) -> [B, D]. coords
        [N, d] (one grid) or [B, N, d]; values [B, N / box, C] observe the fine points."""
        z = values.new_zeros(decoder.latent_size) if z is None else z
        if not self.needs_hessian:
            return z - self.precondition(gradient(decoder, coords, values, z, obs))
        with full_precision(values):  # the Jacobian, H and the solve (full_precision's why)
            return self.gauss_newton(decoder, coords, values, z, obs)

    def gauss_newton(self, decoder: Siren, coords: Tensor, values: Tensor, z: Tensor,
                     obs: Observation) -> Tensor:
        grad, weights, v = linearised(decoder, coords, values, z, obs)
        if is_shared(coords, z):  # H [D, D] shared by the batch
            return z - self.precondition(grad, gauss_newton_matrix(weights, v, obs))
        if self.kind == "gauss-newton-cg" and obs.box == 1:
            return z - damped_solve(weights, v, grad, values.shape[-2], self.damping)
        return z - self.precondition(grad[:, None], gauss_newton_matrix(weights, v, obs))[:, 0]


PAPER_STEP = OriginStep()


def inner_steps(step: Callable[[Tensor | None], Tensor], steps: int) -> Tensor:
    """z after `steps` applications of step, starting from the origin (step(None))."""
    z = None
    for _ in range(steps):
        z = step(z)
    return z


def gradient_origin(decoder: Siren, coords: Tensor, values: Tensor, steps: int = 1,
                    rule: OriginStep = PAPER_STEP, obs: Observation = POINTS) -> Tensor:
    """The latent of each signal [B, D]: `steps` steps of `rule` from the origin."""
    return inner_steps(lambda z: rule(decoder, coords, values, z, obs), steps)


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per signal: [B, D] -> [B]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


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


def variational_step(rule: OriginStep, decoder: Siren, heads: tuple[nn.Linear, nn.Linear],
                     coords: Tensor, values: Tensor, z0: Tensor | None, eps: Tensor | None,
                     kl_scale: float, obs: Observation = POINTS) -> Tensor:
    """One step of `rule` on the paper's inner ELBO (its Variational-GON.py): from z0 [B, D]
    (None = the origin), with (mu, logvar) = heads(z0),
        L(z0) = inner_loss(F(c, mu + eps * sigma), x) + kl_scale * KL(N(mu, sigma^2) || N(0, I)).
    The heads are linear, so the chain rule through them is written out. eps [B, D], or None for
    the posterior mean (inference): from the origin the decoder input b_mu is then shared by the
    batch and `gradient` takes its shared form."""
    to_mu, to_logvar = heads
    origin = z0 is None
    if origin:
        z0 = values.new_zeros(1, to_mu.in_features)
    mu0, logvar0 = to_mu(z0), to_logvar(z0)  # [1 or B, D]
    z_in = mu0 if eps is None else mu0 + eps * torch.exp(0.5 * logvar0)
    z_in = z_in[0] if origin and eps is None else z_in  # [D]: shared by the batch
    g = gradient(decoder, coords, values, z_in, obs)  # dL_rec/dz_in  [B, D]
    return z0 - rule.precondition(heads_grad(to_mu, to_logvar, mu0, logvar0, g, eps, kl_scale))


def origin_affine(decoder: Siren, rule: OriginStep, coords: Tensor, z0: Tensor | None = None,
                  chunk: int = 4096, obs: Observation = POINTS) -> tuple[Tensor, Tensor]:
    """The first step from z0 [D] (default the origin) on one grid coords [N, d] as an affine
    map of the M = N / box observed values: z - z0 = values.flatten(1) @ A + b, A [M*C, D],
    b [D]. The step is P(-g) with P linear and g = (2/M) (AJ)^T (A F(c, z0) - x):
    A = P((2/M) AJ) row by row and b = -P((2/M) (AJ)^T A F(c, z0)). J is built `chunk` points
    at a time (whole observed values) to bound memory."""
    z0 = coords.new_zeros(decoder.latent_size) if z0 is None else z0
    chunk = obs.chunk(chunk)
    parts = [shared_jacobian(decoder, coords[i:i + chunk], z0)
             for i in range(0, coords.shape[0], chunk)]
    f0, v = torch.cat([p[0] for p in parts]), torch.cat([p[2] for p in parts])
    weights = None if parts[0][1] is None else torch.cat([dense(p[1]) for p in parts])
    m = coords.shape[0] // obs.box
    rows = (2.0 / m) * observed_jacobian(weights, v, obs).flatten(0, 1)  # [M*C, D]
    hessian = gauss_newton_matrix(weights, v, obs) if rule.needs_hessian else None
    a = rule.precondition(rows, hessian)  # row m*C + k: observed point m, channel k
    b = -rule.precondition(obs(f0).flatten()[None] @ rows, hessian)[0]
    return a, b


def latent_autograd(decoder: Callable[[Tensor, Tensor], Tensor], coords: Tensor, values: Tensor,
                    z0: Tensor, create_graph: bool = True, obs: Observation = POINTS) -> Tensor:
    """The paper's step by autograd: coords [B, N, d] (or [N, d]), values [B, N / box, C],
    z0 [B, D] -> z = z0 - dL/dz0 [B, D]. For any decoder function (the convolutional GON)."""
    with torch.enable_grad():
        z0 = z0 if z0.requires_grad else z0.detach().requires_grad_(True)
        loss = inner_loss(obs(decoder(coords, z0)), values).sum()  # each signal's gradient its own
        (grad,) = torch.autograd.grad(loss, z0, create_graph=create_graph)
    return z0 - grad
