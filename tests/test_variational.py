"""The variational GON (gon.py): the inner step on the ELBO, the KL term, sampling shapes."""

import pytest
import torch

from inr_gon.config import Config
from inr_gon.models.gon import GON
from inr_gon.models.origin import inner_loss, kl_normal, variational_step
from inr_gon.models.render import grid


def vgon(kl_weight=0.5, inner_steps=1, c=3):
    torch.manual_seed(0)
    cfg = Config.of(hidden=16, layers=3, latent_dim=5, channels=c, w0=10.0, w0_hidden=10.0,
                    latent_init=3.0, variational=True, kl_weight=kl_weight, inner_steps=inner_steps)
    model = GON(cfg).double()
    with torch.no_grad():  # non-trivial heads: the origin maps to a mean and variance away from 0, 1
        model.to_mu.bias.uniform_(-0.5, 0.5)
        model.to_logvar.bias.uniform_(-1.0, 1.0)
    return model


def heads(model):
    return model.to_mu, model.to_logvar


def reference_step(model, coords, x, z0, eps, kl_scale):
    """The paper's Variational-GON.py inner step, by autograd through heads and decoder."""
    z0 = z0.clone().requires_grad_(True)
    mu, logvar = model.to_mu(z0), model.to_logvar(z0)
    z_in = mu + (0 if eps is None else eps * torch.exp(0.5 * logvar))
    loss = inner_loss(model.decoder(coords, z_in), x).sum() + kl_scale * kl_normal(mu, logvar).sum()
    (g,) = torch.autograd.grad(loss, z0)
    return z0 - g


@pytest.mark.parametrize("noise", [True, False])
def test_inner_step_is_the_negative_elbo_gradient(noise):
    model = vgon()
    coords, x = grid(5, 4).double(), torch.rand(3, 20, 3, dtype=torch.double)
    eps = torch.randn(3, 5, dtype=torch.double) if noise else None
    z0 = torch.zeros(3, 5, dtype=torch.double)
    ref = reference_step(model, coords, x, z0, eps, 0.7)
    ours = variational_step(model.origin, model.decoder, heads(model), coords, x, None, eps, 0.7)
    assert torch.allclose(ours, ref, atol=1e-10)
    z1 = 0.3 * torch.randn(3, 5, dtype=torch.double)  # a later inner step, per-signal z0
    ref = reference_step(model, coords, x, z1, eps, 0.7)
    ours = variational_step(model.origin, model.decoder, heads(model), coords, x, z1, eps, 0.7)
    assert torch.allclose(ours, ref, atol=1e-10)


def test_forward_kl_term_and_loss():
    model = vgon(kl_weight=0.1)
    coords, x = grid(4, 4).double(), torch.rand(6, 16, 3, dtype=torch.double)
    out = model(coords, x, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.posterior(coords, x, torch.Generator().manual_seed(0), sample=True)
    expect = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1).mean()
    assert torch.allclose(out["kl"], expect) and out["kl"] > 0
    assert torch.allclose(out["loss"], out["rec"] + 0.1 * out["kl"])
    assert out["z"].shape == (6, 5) and out["pred"].shape == (6, 16, 3)
    assert float(kl_normal(torch.zeros(1, 5), torch.zeros(1, 5))) == 0.0  # KL(N(0,I) || N(0,I))
    out["loss"].backward()
    assert model.to_logvar.weight.grad.abs().sum() > 0 and model.to_mu.weight.grad.abs().sum() > 0


def test_encode_is_the_deterministic_posterior_mean_and_ignores_batch_mates():
    model = vgon(inner_steps=2)
    coords, x = grid(4, 4).double(), torch.rand(4, 16, 3, dtype=torch.double)
    with torch.no_grad():
        a, b = model.encode(coords, x), model.encode(coords, x[:1])
        per_signal = model.encode(coords.expand(4, 16, 2), x)  # explicit form, no shared grid
    assert torch.allclose(a[:1], b, atol=1e-12)
    assert torch.allclose(a, per_signal, atol=1e-10)


def test_kl_weight_pulls_the_posterior_towards_the_prior():
    coords, x = grid(6, 6), torch.rand(16, 36, 1)
    kls = {}
    for w in (1e-4, 1.0):
        torch.manual_seed(0)
        cfg = Config.of(hidden=16, layers=2, latent_dim=4, channels=1, variational=True, kl_weight=w)
        model = GON(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(15):
            out = model(coords, x, generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        kls[w] = float(out["kl"].detach())
    assert kls[1.0] < kls[1e-4]
