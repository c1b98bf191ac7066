import numpy as np
import pytest
import torch
from origin_oracles import latent_autograd, latent_explicit, latent_shared_grid, origin_affine, origin_step

from inr_gon.config import Config
from inr_gon.models.gon import GON
from inr_gon.models.origin import PAPER_STEP, OriginStep, gradient_origin, inner_loss
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


# ---- issue 12: modulation of every layer, latent grids, learned and Gauss-Newton steps ----

def capacious(d=2, c=3, dz=3, g=2, modulation="all", dtype=torch.double):
    torch.manual_seed(2)
    return Siren(d, dz, c, hidden=16, layers=3, w0=10.0, w0_hidden=10.0, latent_init=3.0,
                 modulation=modulation, latent_grid=g).to(dtype)


def points(d, n=20, b=None):
    shape = (n, d) if b is None else (b, n, d)
    return torch.rand(*shape, dtype=torch.double) * 2 - 1


def gauss_newton_reference(net, coords, x, z, rule):
    """One damped Gauss-Newton step per signal with J from autograd."""
    out = []
    for i in range(x.shape[0]):
        c = coords if coords.dim() == 2 else coords[i]
        jac = torch.autograd.functional.jacobian(lambda v, c=c: net(c, v[None])[0], z[i])  # [N, C, D]
        f = net(c, z[i][None])[0]
        j = jac.flatten(0, 1)
        n = x.shape[1]
        h, g = (2 / n) * j.T @ j, (2 / n) * j.T @ (f - x[i]).flatten()
        lam = (torch.nn.functional.softplus(rule.rho) + 1e-3) * h.diagonal().mean() + 1e-6
        out.append(z[i] - torch.linalg.solve(h + lam * torch.eye(len(g), dtype=h.dtype), g))
    return torch.stack(out)


@pytest.mark.parametrize("d,g,modulation", [(2, 0, "all"), (2, 3, "first"), (2, 2, "all"),
                                            (3, 2, "all")])
def test_modulated_grid_latent_is_negative_gradient(d, g, modulation):
    net = capacious(d, g=g, modulation=modulation)
    x = torch.rand(3, 20, 3, dtype=torch.double)
    z0 = 0.2 * torch.randn(3, net.latent_size, dtype=torch.double)
    for coords in (points(d), points(d, b=3)):
        ref = latent_autograd(net, coords, x, z0)
        assert torch.allclose(latent_explicit(net, coords, x, z0), ref, atol=1e-12)
    shared = points(d)
    assert torch.allclose(latent_shared_grid(net, shared, x),
                          latent_autograd(net, shared, x), atol=1e-12)


@pytest.mark.parametrize("d,g", [(2, 2), (2, 3), (3, 2), (3, 3)])
def test_gauss_newton_step_matches_autograd_jacobian(d, g):
    net = capacious(d, g=g)
    rule = OriginStep("gauss-newton", net.latent_size).double()
    x = torch.rand(2, 20, 3, dtype=torch.double)
    coords = points(d, b=2)
    z0 = 0.1 * torch.randn(2, net.latent_size, dtype=torch.double)
    ref = gauss_newton_reference(net, coords, x, z0, rule)
    assert torch.allclose(origin_step(net, rule, coords, x, z0), ref, atol=1e-10)


@pytest.mark.parametrize("kind", ["gradient", "learned", "gauss-newton"])
def test_shared_grid_affine_form_equals_per_signal_step(kind):
    """From the origin on one grid, z = x A + b (what encoder_grid.onnx holds) equals the
    explicit per-signal step, whatever the step rule."""
    net = capacious(g=3)
    rule = OriginStep(kind, net.latent_size).double()
    if kind == "learned":
        with torch.no_grad():
            rule.alpha.uniform_(0.5, 2.0)
    coords, x = grid(5, 4).double(), torch.rand(3, 20, 3, dtype=torch.double)
    per_signal = origin_step(net, rule, coords.expand(3, 20, 2), x)
    shared = origin_step(net, rule, coords, x)
    a, b = origin_affine(net, rule, coords, chunk=7)
    assert torch.allclose(shared, per_signal, atol=1e-10)
    assert torch.allclose(x.flatten(1) @ a + b, per_signal, atol=1e-10)


def test_learned_step_starts_as_the_paper_step():
    net = capacious(g=0, modulation="first")
    rule = OriginStep("learned", net.latent_size).double()
    coords, x = grid(4, 4).double(), torch.rand(2, 16, 3, dtype=torch.double)
    assert torch.equal(gradient_origin(net, coords, x, 2, rule), gradient_origin(net, coords, x, 2))


@pytest.mark.parametrize("kind", ["learned", "gauss-newton", "gauss-newton-cg"])
def test_step_parameters_get_finite_difference_gradients(kind):
    """d(outer loss)/d(alpha or rho) and d/d(latent map) through the step (the solve included),
    checked by gradcheck (finite differences) in float64. The CG rule's second step (per
    signal, 8 unknowns, fewer than its 16 iterations) converges, so the derivative of the exact
    solve that it back-propagates is the derivative of its value (with 18 unknowns, as this test
    once had, it passed by a 1e-4 margin that any rounding change could tip)."""
    torch.manual_seed(3)
    g, dz, n = 2, 2, 4
    cfg = Config.of(hidden=8, layers=2, latent_dim=dz, latent_grid=g, modulation="all", channels=1,
                    origin_step=kind, inner_steps=2, w0=5.0, w0_hidden=5.0, height=n, width=n)
    model = GON(cfg).double()
    coords, x = grid(n, n).double(), torch.rand(2, n * n, 1, dtype=torch.double)
    step_param = model.origin.alpha if kind == "learned" else model.origin.rho
    names = ["origin." + ("alpha" if kind == "learned" else "rho"), "decoder.mods.0.weight"]

    def loss(p, m):
        params = {names[0]: p, names[1]: m}
        return torch.func.functional_call(model, params, (coords, x))["loss"]

    m = model.decoder.mods[0].weight
    assert torch.autograd.gradcheck(loss, (step_param.detach().clone().requires_grad_(),
                                           m.detach().clone().requires_grad_()))


def test_gauss_newton_is_finite_where_h_is_singular():
    """A decoder whose latent maps are zero has J = 0, H = 0: the damping floor keeps the solve
    defined and the latent (0) finite; a huge negative rho is floored too."""
    net = capacious(g=2)
    with torch.no_grad():
        net.latent.weight.zero_()
        for m in net.mods:
            m.weight.zero_()
    rule = OriginStep("gauss-newton", net.latent_size).double()
    with torch.no_grad():
        rule.rho.fill_(-1e4)
    x = torch.rand(2, 20, 3, dtype=torch.double)
    for coords in (grid(5, 4).double(), points(2, b=2)):
        z = gradient_origin(net, coords, x, 2, rule)
        assert torch.isfinite(z).all() and z.abs().max() == 0


@pytest.mark.parametrize("kind", ["learned", "gauss-newton", "gauss-newton-cg"])
def test_new_steps_do_not_depend_on_batch_mates(kind):
    torch.manual_seed(0)
    cfg = Config.of(hidden=32, layers=3, latent_dim=4, latent_grid=3, modulation="all", channels=3,
                    origin_step=kind, height=9, width=9)
    model = GON(cfg)
    coords, x = grid(9, 9), torch.rand(16, 81, 3)
    with torch.no_grad():
        alone = model.encode(coords, x[:1])
        batch = model.encode(coords, x)
    assert torch.allclose(alone[0], batch[0], atol=1e-5)


def test_gauss_newton_fits_better_than_the_gradient_step_on_a_grid():
    """The reason for the option: where the decoder is near-linear in z (low frequencies), one
    damped Gauss-Newton step from the origin fits a latent grid far better than the gradient."""
    torch.manual_seed(2)
    net = Siren(2, 3, 3, hidden=16, layers=3, w0=1.0, w0_hidden=1.0, modulation="all",
                latent_grid=3)
    coords = grid(12, 12)
    x = (0.5 + 0.3 * torch.sin(3 * coords[:, :1] + torch.arange(4.0)[:, None, None])).expand(4, 144, 3)
    gn = OriginStep("gauss-newton", net.latent_size)
    with torch.no_grad():
        losses = {k: inner_loss(net(coords, gradient_origin(net, coords, x, 1, r)), x).mean()
                  for k, r in (("gradient", PAPER_STEP), ("gauss-newton", gn))}
        start = inner_loss(net(coords, torch.zeros(1, net.latent_size)), x).mean()
    assert losses["gauss-newton"] < 0.25 * start and losses["gauss-newton"] < 0.25 * losses["gradient"]


def test_grid_latent_renders_at_any_size():
    torch.manual_seed(0)
    model = GON(Config.of(hidden=16, layers=3, latent_dim=3, latent_grid=2, modulation="all",
                          height=8, width=8))
    z = model.encode(grid(8, 8), torch.rand(2, 64, 3)).detach()
    img = model.render(z, 12, 20)
    assert img.shape == (2, 12, 20, 3)
    with torch.no_grad():
        ref = model.decode(grid(12, 20), z).clamp(0, 1).reshape(2, 12, 20, 3)
    assert np.allclose(img, ref.numpy(), atol=1e-6)


def test_under_bf16_autocast_the_first_phase_and_the_gauss_newton_step_stay_float32():
    """`--precision bf16`: the later layers' matmuls run in bfloat16, but the first phase (tens
    of radians at w0 = 30) and the whole Gauss-Newton step (Jacobian, H, solve) are the
    float32 ones bit for bit, and the decode stays within bf16's error of float32's."""
    torch.manual_seed(0)
    net = Siren(2, 8, 3, hidden=64, layers=3, w0=30.0, w0_hidden=30.0, latent_init=5.0,
                modulation="all", latent_grid=4)
    rule = OriginStep("gauss-newton", net.latent_size)
    coords, x = grid(16, 16), torch.rand(4, 256, 3)
    z32 = gradient_origin(net, coords, x, 2, rule)
    _, phase32, _ = net.phases(coords, z32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z16 = gradient_origin(net, coords, x, 2, rule)
        _, phase16, _ = net.phases(coords, z16)
        out16 = net(coords, z16)
        hidden16 = net.hidden[0](torch.sin(phase16))
    assert hidden16.dtype == torch.bfloat16  # autocast did engage the later layers
    assert z16.dtype == phase16.dtype == torch.float32
    assert torch.equal(z16, z32) and torch.equal(phase16, phase32)
    assert phase32.abs().max() > 8  # large phases: where bf16's 8 bits would cost 0.03+ rad
    err = (out16.float() - net(coords, z32)).abs()
    assert 0 < err.max() < 0.05 and err.mean() < 5e-3
