import torch

from inr_gon.models.siren import Siren


def make(c=3, d=2, dz=5):
    torch.manual_seed(0)
    return Siren(d, dz, c, hidden=24, layers=3, w0=30.0, w0_hidden=20.0).double()


def test_split_first_layer_equals_concatenation():
    net = make()
    coords, z = torch.rand(2, 7, 2, dtype=torch.double), torch.randn(2, 5, dtype=torch.double)
    w = torch.cat([net.coord.weight, net.latent.weight], dim=1)  # [H, d + D]
    cat = torch.cat([coords, z[:, None].expand(2, 7, 5)], dim=-1)
    assert torch.allclose(net(coords, z), net.trunk(cat @ w.T + net.coord.bias), atol=1e-12)


def test_trunk_vjp_matches_autograd():
    net = make()
    pre1 = torch.randn(3, 11, 24, dtype=torch.double, requires_grad=True)
    cot = torch.randn(3, 11, 3, dtype=torch.double)
    values, g = net.trunk_vjp(pre1, lambda v: cot)
    (ref,) = torch.autograd.grad((net.trunk(pre1) * cot).sum(), pre1)
    assert torch.allclose(values, net.trunk(pre1))
    assert torch.allclose(g, ref, atol=1e-10)


def test_init_roles():
    net = Siren(2, 32, 1, hidden=256, layers=4, w0=30.0)
    # coordinate columns: SIREN's first layer U(+-1/d); hidden: U(+-sqrt(6/n)/w0)
    assert net.coord.weight.abs().max() <= 0.5 and net.coord.weight.abs().max() > 0.45
    assert net.hidden[0].weight.abs().max() <= (6 / 256) ** 0.5 / 30
    assert net.flops_per_point() == 2 * (2 * 256 + 3 * 256 * 256 + 256)
