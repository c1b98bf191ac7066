"""The matrix-free Gauss-Newton step (models/gauss_newton.py) against dense J and solves."""

import pytest
import torch
from origin_oracles import origin_step
from test_gon import capacious, gauss_newton_reference, points

from inr_gon.models.gauss_newton import (
    conjugate_gradient,
    diagonal,
    implicit_solve,
    jacobian_product,
)
from inr_gon.models.origin import OriginStep, jacobian
from inr_gon.models.render import grid
from inr_gon.models.siren import grid_jacobian, grid_jacobian_t


@pytest.mark.parametrize("d,g", [(2, 0), (2, 3), (3, 2)])
def test_factor_products_equal_the_dense_jacobian(d, g):
    """J p and diag(J^T J) from the factors, and J^T r (siren.grid_jacobian_t, the adjoint CG
    pairs with J p) on per-signal factors."""
    net = capacious(d, g=g)
    coords, z = points(d, b=2), 0.1 * torch.randn(2, net.latent_size, dtype=torch.double)
    _, weights, v = jacobian(net, coords, z)
    dense = grid_jacobian(weights, v)  # [B, N, C, D_total]
    p = torch.randn(2, net.latent_size, dtype=torch.double)
    r = torch.randn(2, coords.shape[1], 3, dtype=torch.double)
    assert torch.allclose(jacobian_product(weights, v, p), torch.einsum("bncd,bd->bnc", dense, p))
    assert torch.allclose(grid_jacobian_t(weights, v, r), torch.einsum("bncd,bnc->bd", dense, r))
    assert torch.allclose(diagonal(weights, v), dense.pow(2).sum((1, 2)))


def test_conjugate_gradient_solves_in_as_many_iterations_as_unknowns():
    torch.manual_seed(0)
    a = torch.randn(3, 12, 12, dtype=torch.double)
    a = a @ a.transpose(1, 2) + 0.1 * torch.eye(12, dtype=torch.double)
    b = torch.randn(3, 12, dtype=torch.double)
    x = conjugate_gradient(lambda p: (a @ p[..., None])[..., 0], b, a.diagonal(dim1=1, dim2=2), 12)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)


def test_implicit_solve_has_the_gradients_of_the_exact_solve():
    """Value and gradients (to b and to the matrix's factor) of torch.linalg.solve; the CG
    iterations run without a graph, so the gradients come from the implicit rule alone."""
    torch.manual_seed(1)
    j = torch.randn(2, 30, 20, dtype=torch.double, requires_grad=True)
    b = torch.randn(2, 20, dtype=torch.double, requires_grad=True)
    w = torch.randn(2, 20, dtype=torch.double)

    def matrix(j):
        return j.transpose(1, 2) @ j + 3.0 * torch.eye(20, dtype=torch.double)

    def matvec(p):
        return (matrix(j) @ p[..., None])[..., 0]

    x = implicit_solve(matvec, b, matrix(j).diagonal(dim1=1, dim2=2), iterations=20)
    ref = torch.linalg.solve(matrix(j), b)
    assert torch.allclose(x, ref, atol=1e-9)
    grads = torch.autograd.grad((x * w).sum(), (j, b))
    refs = torch.autograd.grad((ref * w).sum(), (j, b))
    assert all(torch.allclose(g, r, atol=1e-8) for g, r in zip(grads, refs))


def test_cg_step_is_the_gauss_newton_step_per_signal_and_the_dense_one_on_a_shared_grid():
    """With no more unknowns than iterations (2^2 cells x 3 = 12), CG is the exact solve; on
    one grid shared by the batch both rules take the same dense solve."""
    net = capacious(2, g=2)
    cg, dense = OriginStep("gauss-newton-cg", 12).double(), OriginStep("gauss-newton", 12).double()
    x, coords = torch.rand(2, 20, 3, dtype=torch.double), points(2, b=2)
    z0 = 0.1 * torch.randn(2, 12, dtype=torch.double)
    ref = gauss_newton_reference(net, coords, x, z0, dense)
    assert torch.allclose(origin_step(net, cg, coords, x, z0), ref, atol=1e-8)
    shared = grid(5, 4).double()
    assert torch.equal(origin_step(net, cg, shared, x), origin_step(net, dense, shared, x))


def test_cg_step_is_close_to_the_exact_step_with_more_unknowns_than_iterations():
    """A 3^3 grid of 3 (81 unknowns), 16 iterations: the step agrees with the dense solve to a
    few percent, and fits the signal as well."""
    net = capacious(3, g=3)
    cg, dense = OriginStep("gauss-newton-cg", 81).double(), OriginStep("gauss-newton", 81).double()
    coords = points(3, n=400, b=2)
    x = 0.3 * torch.sin(3 * coords[..., :1]).expand(2, 400, 3)
    z_cg, z_dense = origin_step(net, cg, coords, x), origin_step(net, dense, coords, x)
    assert (z_cg - z_dense).norm() < 0.1 * z_dense.norm()
    loss = {k: (net(coords, z) - x).pow(2).mean() for k, z in (("cg", z_cg), ("dense", z_dense))}
    assert loss["cg"] < 1.01 * loss["dense"]


def test_batched_dense_step_is_right_with_several_threads():
    """Per-signal Hessians solved in one batch agree with one solve each, also after
    torch.set_num_threads (which broke MKL's batched LU solve: pytorch#142815)."""
    torch.manual_seed(2)
    rule, before = OriginStep("gauss-newton", 160), torch.get_num_threads()
    a = torch.randn(3, 400, 160)
    hessian, grad = a.mT @ a / 400, torch.randn(3, 1, 160)
    try:
        torch.set_num_threads(2)
        with torch.no_grad():
            batched = rule.precondition(grad, hessian)
            each = torch.stack([rule.precondition(g, h) for g, h in zip(grad, hessian)])
    finally:
        torch.set_num_threads(before)
    assert torch.allclose(batched, each, rtol=1e-4, atol=1e-5)
    lam = rule.damping(hessian.diagonal(dim1=1, dim2=2).mean(-1))[:, None, None]
    assert torch.allclose(batched @ (hessian + lam * torch.eye(160)), grad, atol=1e-4)
