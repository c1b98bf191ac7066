"""models/cells.py: corner weights are the dense interpolation matrix, applied sparsely."""

import pytest
import torch

from inr_gon.models.cells import Corners, dense, mix, spread, squared
from inr_gon.models.gauss_newton import damped_solve
from inr_gon.models.origin import OriginStep, jacobian, origin_affine
from inr_gon.models.siren import CORNERS_ABOVE, Siren


def decoder(d: int, g: int) -> Siren:
    torch.manual_seed(0)
    return Siren(d, 3, 2, hidden=16, layers=3, w0=10.0, modulation="all", latent_grid=g).double()


def coords(*lead: int, d: int) -> torch.Tensor:
    torch.manual_seed(1)
    c = torch.rand(*lead, d, dtype=torch.double) * 2.2 - 1.1  # a few outside [-1, 1]: clamped
    c[..., 0, :] = 1.0  # the last node exactly
    return c


@pytest.mark.parametrize("d,g", [(2, 5), (3, 4), (3, 6)])
def test_corners_are_the_dense_weights(d, g):
    net, c = decoder(d, g), coords(2, 40, d=d)
    sparse, full = net.interp_weights(c), net.interp_weights(c, as_dense=True)
    assert isinstance(sparse, Corners) and g**d > CORNERS_ABOVE * 2**d
    assert torch.allclose(sparse.dense(), full, atol=1e-14)
    assert torch.allclose(dense(squared(sparse)), full.pow(2), atol=1e-14)
    table, g_pts = torch.randn(2, g**d, 7, dtype=torch.double), torch.randn(2, 40, 7, dtype=torch.double)
    assert torch.allclose(mix(sparse, table), full @ table, atol=1e-12)
    assert torch.allclose(spread(sparse, g_pts), full.transpose(-1, -2) @ g_pts, atol=1e-12)
    # one table for the batch, one weight set for a batch of tables (the shared grid's case)
    assert torch.allclose(mix(sparse, table[:1]), full @ table[:1], atol=1e-12)
    one = net.interp_weights(c[0])
    assert torch.allclose(mix(one, table), full[0] @ table, atol=1e-12)
    assert torch.allclose(spread(one, g_pts), full[0].T @ g_pts, atol=1e-12)


def test_small_grids_stay_dense_and_no_grid_is_none():
    assert isinstance(decoder(2, 4).interp_weights(coords(5, d=2)), torch.Tensor)  # 16 cells
    assert decoder(2, 0).interp_weights(coords(5, d=2)) is None


def test_gradients_through_corners_match_the_dense_ones():
    """First and second order in the table; coordinates that need a gradient get dense weights."""
    net = decoder(3, 5)
    c = coords(2, 30, d=3)
    table = torch.randn(2, 125, 4, dtype=torch.double, requires_grad=True)
    outs = []
    for w in (net.interp_weights(c), net.interp_weights(c, as_dense=True)):
        y = (mix(w, table).sin() * 3).sum() + (spread(w, mix(w, table).cos()) ** 2).sum()
        (gt,) = torch.autograd.grad(y, table, create_graph=True)
        (ht,) = torch.autograd.grad(gt.pow(2).sum(), table)
        outs.append((y, gt, ht))
    for a, b in zip(*outs):
        assert torch.allclose(a, b, atol=1e-9)
    assert isinstance(net.interp_weights(c.requires_grad_()), torch.Tensor)


def test_decoder_and_cg_step_agree_with_the_dense_path():
    net, c = decoder(3, 5), coords(3, 64, d=3)
    z = torch.randn(3, net.latent_size, dtype=torch.double)
    dense_net = decoder(3, 5)
    dense_net.interp_weights = lambda x, as_dense=False: Siren.interp_weights(dense_net, x, True)
    assert torch.allclose(net(c, z), dense_net(c, z), atol=1e-12)
    values = torch.randn(3, 64, 2, dtype=torch.double)
    rule = OriginStep("gauss-newton-cg", net.latent_size).double()
    # CG stops a row once its residual is rounding: the two orders of summation may stop it an
    # iteration apart, so equal to float64's CG tolerance, not to the last bit
    step = rule(net, c, values)
    assert torch.allclose(step, rule(dense_net, c, values), rtol=1e-6, atol=1e-6 * step.abs().max().item())
    f, w, v = jacobian(net, c, z)
    grad = torch.randn(3, net.latent_size, dtype=torch.double)
    solved = damped_solve(w, v, grad, 64, rule.damping)
    again = damped_solve(dense(w), v, grad, 64, rule.damping)
    assert torch.allclose(solved, again, rtol=1e-6, atol=1e-6 * solved.abs().max().item())


def test_the_affine_encoder_takes_a_grid_applied_by_corners():
    """origin_affine (the ONNX encoder's map) on a 5 x 5 image grid: the batch's own step."""
    net = decoder(2, 5)
    side = torch.linspace(-1, 1, 10, dtype=torch.double)
    grid = torch.cartesian_prod(side, side)  # [100, 2], one grid for the batch
    assert isinstance(net.interp_weights(grid), Corners)
    values = torch.randn(4, 100, 2, dtype=torch.double)
    rule = OriginStep("gauss-newton", net.latent_size).double()
    a, b = origin_affine(net, rule, grid, chunk=30)
    assert torch.allclose(values.flatten(1) @ a + b, rule(net, grid, values), atol=1e-8)


def test_the_corners_trace_into_one_graph_for_torch_compile():
    """No data-dependent shapes in the plan: --compile keeps the mesh step one graph."""
    net, c = decoder(3, 5).float(), coords(2, 64, d=3).float()
    rule = OriginStep("gauss-newton-cg", net.latent_size)
    values = torch.randn(2, 64, 2)
    explained = torch._dynamo.explain(lambda: net(c, rule(net, c, values)).sum())()
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
