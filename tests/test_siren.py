import pytest
import torch

from inr_gon.models.siren import Siren, grid_gram, grid_jacobian, grid_jacobian_t


def make(c=3, d=2, dz=5, **kw):
    torch.manual_seed(0)
    return Siren(d, dz, c, hidden=24, layers=3, w0=30.0, w0_hidden=20.0, **kw).double()


def test_split_first_layer_equals_concatenation():
    net = make()
    coords, z = torch.rand(2, 7, 2, dtype=torch.double), torch.randn(2, 5, dtype=torch.double)
    w = torch.cat([net.coord.weight, net.latent.weight], dim=1)  # [H, d + D]
    cat = torch.cat([coords, z[:, None].expand(2, 7, 5)], dim=-1)
    assert torch.allclose(net(coords, z), net.sines(net.w0 * (cat @ w.T + net.coord.bias)), atol=1e-12)


def test_modulation_all_shifts_every_layer_by_its_own_map():
    """pre_k = h_{k-1} W_k^T + b_k + z M_k^T, written out layer by layer."""
    net = make(modulation="all")
    coords, z = torch.rand(2, 7, 2, dtype=torch.double), torch.randn(2, 5, dtype=torch.double)
    h = torch.sin(net.w0 * (net.coord(coords) + net.latent(z)[:, None]))
    for layer, m in zip(net.hidden, net.mods):
        h = torch.sin(net.w0_hidden * (layer(h) + m(z)[:, None]))
    assert torch.allclose(net(coords, z), net.out(h), atol=1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_latent_grid_interpolates_its_cells(d):
    """At a cell centre the decoder sees that cell's vector; between cells, the linear mix."""
    g, dz = 3, 4
    net = make(d=d, dz=dz, latent_grid=g, modulation="all")
    ref = make(d=d, dz=dz, modulation="all")  # same weights, one global vector
    z = torch.randn(1, g**d * dz, dtype=torch.double)
    cells = z.reshape(g, *[g] * (d - 1), dz)
    idx = (1, 2, 0)[:d]
    centre = torch.tensor([-1 + 2 * i / (g - 1) for i in idx], dtype=torch.double)
    assert torch.allclose(net(centre[None], z), ref(centre[None], cells[idx][None]), atol=1e-12)
    between = centre.clone()
    between[0] = 0.5  # halfway between cells 1 and 2 along axis 0 (cells at -1, 0, 1)
    mix = 0.5 * (cells[(1, *idx[1:])] + cells[(2, *idx[1:])])
    assert torch.allclose(net(between[None], z), ref(between[None], mix[None]), atol=1e-12)
    w = net.interp_weights(torch.rand(9, d, dtype=torch.double) * 2 - 1)
    assert w.shape == (9, g**d) and torch.allclose(w.sum(-1), torch.ones(9, dtype=torch.double))
    assert ((w > 0).sum(-1) <= 2**d).all()


@pytest.mark.parametrize("kw", [{}, {"modulation": "all"}, {"modulation": "all", "latent_grid": 2}])
def test_sines_vjp_and_latent_maps_match_autograd(kw):
    net = make(**kw)
    coords = torch.rand(3, 11, 2, dtype=torch.double) * 2 - 1
    z = torch.randn(3, net.latent_size, dtype=torch.double, requires_grad=True)
    cot = torch.randn(3, 11, 3, dtype=torch.double)
    weights = net.interp_weights(coords)
    s = net.shifts(weights, z)
    values, grads = net.sines_vjp(net.base(coords) + s[0], s[1:], lambda v: cot)
    assert len(grads) == len(s) and torch.allclose(values, net(coords, z))
    (ref,) = torch.autograd.grad((net(coords, z) * cot).sum(), z)
    assert torch.allclose(net.latent_vjp(weights, grads), ref, atol=1e-10)
    jac = grid_jacobian(weights, net.latent_factor(grads)[..., None, :])  # [B, N, 1, D_total]
    assert torch.allclose(jac.sum((-3, -2)), ref, atol=1e-10)


@pytest.mark.parametrize("d,g", [(2, 0), (2, 2), (2, 4), (3, 2), (3, 3)])
def test_grid_jacobian_transpose_product(d, g):
    """J^T r through the grid (weights^T (sum_c r v)) == the dense J's product, batched or shared."""
    torch.manual_seed(0)
    cells = max(g, 1) ** d
    coords = torch.rand(2, 30, d, dtype=torch.double) * 2 - 1
    weights = make(d=d, latent_grid=g).interp_weights(coords)
    v, r = torch.randn(2, 30, 3, 4, dtype=torch.double), torch.randn(2, 30, 3, dtype=torch.double)
    for w in (weights, None if weights is None else weights[0]):
        j = grid_jacobian(w, v).flatten(-3, -2)  # [B, N*C, D_total]
        assert j.shape == (2, 90, cells * 4)
        assert torch.allclose(grid_jacobian_t(w, v, r), (r.flatten(1)[:, None] @ j)[:, 0], atol=1e-12)
        assert torch.allclose(grid_gram(w, v), j.transpose(-1, -2) @ j)


def test_init_roles():
    net = Siren(2, 32, 1, hidden=256, layers=4, w0=30.0)
    # coordinate columns: SIREN's first layer U(+-1/d); hidden: U(+-sqrt(6/n)/w0)
    assert net.coord.weight.abs().max() <= 0.5 and net.coord.weight.abs().max() > 0.45
    assert net.hidden[0].weight.abs().max() <= (6 / 256) ** 0.5 / 30
    assert net.flops_per_point() == 2 * (2 * 256 + 3 * 256 * 256 + 256)
    assert len(net.mods) == 0 and net.latent_size == 32
    assert Siren(3, 8, 1, layers=4, modulation="all", latent_grid=4).latent_size == 4**3 * 8
