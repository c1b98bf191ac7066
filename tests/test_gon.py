import torch

from inr_gon.config import Config
from inr_gon.models.gon import (
    GON,
    gradient_origin,
    inner_loss,
    latent_autograd,
    latent_explicit,
    latent_shared_grid,
)
from inr_gon.models.render import grid
from inr_gon.models.siren import Siren


def tiny(c=3, dz=6, dtype=torch.double):
    torch.manual_seed(1)
    return Siren(2, dz, c, hidden=16, layers=3, w0=10.0, w0_hidden=10.0, latent_init=3.0).to(dtype)


def test_latent_is_negative_gradient_by_finite_differences():
    net = tiny()
    coords = grid(5, 4).double()
    x = torch.rand(1, 20, 3, dtype=torch.double)
    z = latent_shared_grid(net, coords, x)[0]
    eps = 1e-6
    for d in range(6):
        e = torch.zeros(1, 6, dtype=torch.double)
        e[0, d] = eps
        fd = (inner_loss(net(coords, e), x) - inner_loss(net(coords, -e), x)) / (2 * eps)
        assert abs(-fd.item() - z[d].item()) < 1e-8


def test_three_forms_agree():
    net = tiny()
    coords = grid(6, 5).double()
    x = torch.rand(3, 30, 3, dtype=torch.double)
    a = latent_autograd(net, coords.expand(3, 30, 2), x)
    assert torch.allclose(a, latent_explicit(net, coords, x), atol=1e-12)
    assert torch.allclose(a, latent_shared_grid(net, coords, x), atol=1e-12)
    z0 = 0.1 * torch.randn(3, 6, dtype=torch.double)
    assert torch.allclose(latent_autograd(net, coords, x, z0), latent_explicit(net, coords, x, z0))


def test_shared_grid_gives_reference_weight_gradients():
    net = tiny()
    coords, x = grid(6, 6).double(), torch.rand(4, 36, 3, dtype=torch.double)

    def weight_grads(encode):
        net.zero_grad()
        z = encode()
        (net(coords, z) - x).pow(2).mean().backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    ref = weight_grads(lambda: latent_autograd(net, coords.expand(4, 36, 2), x))
    ours = weight_grads(lambda: latent_shared_grid(net, coords, x))
    assert ((ref - ours).norm() / ref.norm()) < 1e-10


def test_latent_does_not_depend_on_batch_mates():
    torch.manual_seed(0)
    cfg = Config.of(hidden=64, layers=3, latent_dim=16, channels=1, latent_init=10.0)
    model = GON(cfg)
    coords = grid(12, 12)
    x = torch.rand(64, 144, 1)
    with torch.no_grad():
        alone = model.encode(coords, x[:1])
        batch = model.encode(coords, x)
        batch8 = model.encode(coords, x[:8])
    assert torch.allclose(alone[0], batch[0], atol=1e-5)
    assert torch.allclose(batch[:8], batch8, atol=1e-5)


def test_more_inner_steps_lower_the_inner_loss():
    net = tiny()
    coords, x = grid(6, 6).double(), torch.rand(2, 36, 3, dtype=torch.double)
    losses = [inner_loss(net(coords, gradient_origin(net, coords, x, k)), x).sum() for k in (1, 2, 3)]
    z0 = torch.zeros(2, 6, dtype=torch.double)
    assert losses[0] < inner_loss(net(coords, z0), x).sum()
    assert losses[2] < losses[0]


def test_variational_forward_has_kl_and_shapes():
    cfg = Config.of(hidden=16, layers=2, latent_dim=4, channels=3, variational=True, kl_weight=0.1)
    model = GON(cfg)
    coords, x = grid(4, 4), torch.rand(5, 16, 3)
    out = model(coords, x, generator=torch.Generator().manual_seed(0))
    assert out["pred"].shape == (5, 16, 3) and out["z"].shape == (5, 4)
    assert out["kl"] >= 0
    assert torch.allclose(out["loss"], out["rec"] + 0.1 * out["kl"])
    out["loss"].backward()
    assert model.to_logvar.weight.grad is not None
