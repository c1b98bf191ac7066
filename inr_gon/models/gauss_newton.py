"""The damped Gauss-Newton step without forming H: conjugate gradients on J's factors.

Where every signal has its own Jacobian (SDF points are drawn per shape; any step after the
first), H = (2/M) J^T J is [B, D_total, D_total] and forming it costs N D_total^2 per signal: with
a 4^3 grid of 16-vectors (D_total 1,024) about 1M multiply-adds per point, ~20x a forward pass
of a 3 x 128 decoder. J itself is cheap in factored form (`origin.jacobian`: J[n] = weights[n]
(x) v[n], one backward pass per channel), and a product H p costs two thin products with it
(~2 G^d D per point). So the
`gauss-newton-cg` rule solves (H + lambda I) x = g by CG_ITERATIONS Jacobi-preconditioned
conjugate-gradient iterations.

Training back-propagates through the step by implicit differentiation (`implicit_solve`: the
derivative of the exact solve, A^-1 again by CG), not through the CG iterations: measured on
the 10 training meshes of benchmarks/shapes.py (3 x 128, 4^3 x 16, lr 1e-3, seed 0), training
through the unrolled iterations collapsed after 500-600 steps (clamped L1 0.0025 -> 0.015-0.024,
with 16 or 48 iterations, with or without gradient-norm clipping at 1) and implicit
differentiation did not (0.0021 at step 800). Held at lr 1e-3 for longer it degraded too (from
step ~900 of a constant-lr probe; collapsed at ~1,450 of an 8,000-step schedule); at 5e-4 it
trained on (the mesh folders' default, presets.py). The probe logs:
benchmarks/results/shapes/cg_stability/ (benchmarks/cg_stability.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from inr_gon.models.cells import Weights, mix, spread, squared
from inr_gon.models.siren import grid_jacobian_t

CG_ITERATIONS = 16  # a training step 1.22x the gradient step's (benchmarks/shapes.py steptime)


def jacobian_product(weights: Weights, v: Tensor, p: Tensor) -> Tensor:
    """J p: factors weights [..., N, G^d] (None: no grid), v [..., N, C, D], directions
    p [B, D_total] -> [B, N, C]. Its adjoint J^T r is `siren.grid_jacobian_t`."""
    cells = p.unflatten(-1, (-1, v.shape[-1]))  # [B, G^d, D]
    q = mix(weights, cells)  # [B, 1 or N, D]
    return (v * q[..., None, :]).sum(-1)


def diagonal(weights: Weights, v: Tensor) -> Tensor:
    """diag(J^T J) [..., D_total]: each column's squared norm, from the factors."""
    v2 = v.pow(2).sum(-2)  # [..., N, D]
    return spread(squared(weights), v2).flatten(-2)


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, diag: Tensor,
                       iterations: int = CG_ITERATIONS) -> Tensor:
    """x ~ A^-1 b for symmetric positive definite A given as matvec, rows b [B, D], by at most
    `iterations` CG iterations preconditioned by A's diagonal `diag` [B or 1, D]; from x = b / diag
    (the exact answer where A is diagonal). A row stops once its residual is below sqrt(eps) of
    its start: past that, alpha and beta would be ratios of rounding errors."""
    x = b / diag
    r = b - matvec(x)
    z = r / diag
    p, rz = z, (r * z).sum(-1, keepdim=True)  # [B, 1]
    floor = rz.detach() * torch.finfo(b.dtype).eps  # (sqrt(eps) |r0|)^2 in the M^-1 norm
    for _ in range(iterations):
        live = rz > floor
        ap = matvec(p)
        alpha = torch.where(live, rz / torch.where(live, (p * ap).sum(-1, keepdim=True), 1), 0)
        x = x + alpha * p
        r = r - alpha * ap
        z = r / diag
        rz_new = (r * z).sum(-1, keepdim=True)
        p = z + torch.where(live, rz_new / torch.where(live, rz, 1), 0) * p
        rz = rz_new
    return x


class _ImplicitSolve(torch.autograd.Function):
    """x = A^-1 y by CG, and its backward A^-1 grad by CG too (A symmetric): the derivative of
    the exact solve, not of the CG iterations. A (matvec, diag) is fixed: no gradient to it
    here; `implicit_solve` routes that through the residual."""

    @staticmethod
    def forward(ctx, y: Tensor, matvec, diag: Tensor, iterations: int) -> Tensor:
        ctx.matvec, ctx.diag, ctx.iterations = matvec, diag, iterations
        return conjugate_gradient(matvec, y, diag, iterations)

    @staticmethod
    def backward(ctx, grad: Tensor):
        with torch.no_grad():
            return conjugate_gradient(ctx.matvec, grad, ctx.diag, ctx.iterations), None, None, None


def implicit_solve(matvec: Callable[[Tensor], Tensor], b: Tensor, diag: Tensor,
                   iterations: int = CG_ITERATIONS) -> Tensor:
    """x ~ A^-1 b with the gradient of the exact solve (implicit differentiation): x0 by CG
    without a graph, then x = x0 + S(b - A x0) with S the CG solve whose backward is A^-1: grad b
    = A^-1 grad x, and A's own parameters get -(A^-1 grad x) x0^T through A x0."""
    with torch.no_grad():
        x0 = conjugate_gradient(matvec, b, diag, iterations)

    def fixed(p: Tensor) -> Tensor:
        with torch.no_grad():
            return matvec(p)

    # The residual is ~0, so its solve only polishes x0; its backward carries the gradient.
    return x0 + _ImplicitSolve.apply(b - matvec(x0), fixed, diag.detach(), iterations)


def damped_solve(weights: Weights, v: Tensor, grad: Tensor, m: int,
                 damping: Callable[[Tensor], Tensor]) -> Tensor:
    """(H + lambda I)^-1 grad with H = (2/M) J^T J never formed: grad [B, D_total], factors as
    `jacobian_product`, M observed points, damping(mean of diag H [B]) -> lambda [B]."""
    diag_h = diagonal(weights, v) * (2 / m)  # [B or 1, D_total]
    lam = damping(diag_h.mean(-1))[..., None]  # [B or 1, 1]

    def matvec(p: Tensor) -> Tensor:
        return grid_jacobian_t(weights, v, jacobian_product(weights, v, p)) * (2 / m) + lam * p

    return implicit_solve(matvec, grad, diag_h + lam)
