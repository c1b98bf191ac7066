"""The variational GON (gon.py): the inner step on the ELBO, the KL term, sampling shapes; the
Laplace posterior of the variational Gauss-Newton step (laplace.py)."""

import pytest
import torch

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.models.factory import model_class
from inr_gon.models.gon import GON
from inr_gon.models.laplace import grid_prior, laplace_kl, laplace_posterior, laplace_sample, prior_draw
from inr_gon.models.origin import (
    ABS_FLOOR,
    DAMPING_FLOOR,
    gauss_newton_matrix,
    gradient_origin,
    inner_loss,
    kl_normal,
    origin_affine,
    shared_jacobian,
    variational_step,
)
from inr_gon.models.render import grid
from inr_gon.models.siren import grid_jacobian


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


def laplace_gon(**fields):
    torch.manual_seed(0)
    base = dict(hidden=16, layers=3, latent_dim=3, latent_grid=2, modulation="all", channels=3,
                origin_step="gauss-newton", variational=True, kl_weight=0.1)
    return GON(Config.of(**{**base, **fields})).double()


def test_laplace_posterior_is_the_damped_step_and_its_covariance():
    """mu is the deterministic Gauss-Newton step; Sigma = lambda (H + lambda I)^-1 against a
    dense inverse; the samples' covariance is Sigma; the KL matches the closed form."""
    model = laplace_gon()
    coords, x = grid(6, 6).double(), torch.rand(4, 36, 3, dtype=torch.double)
    mu, chol, lam = laplace_posterior(model.origin, model.decoder, coords, x)
    assert torch.allclose(mu, gradient_origin(model.decoder, coords, x, 1, model.origin))
    assert torch.allclose(model.encode(coords, x), mu)
    f, weights, v = shared_jacobian(model.decoder, coords, torch.zeros(12, dtype=torch.double))
    h = gauss_newton_matrix(weights, v)
    sigma = (lam * torch.linalg.inv(h + lam * torch.eye(12, dtype=torch.double))).detach()
    eps = torch.randn(200_000, 12, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    draws = laplace_sample(mu[:1].expand(200_000, -1), chol, lam, eps) - mu[:1]
    assert torch.allclose(draws.T @ draws / 200_000, sigma, atol=0.02 * float(sigma.diagonal().max()))
    kl = 0.5 * (mu.pow(2).sum(-1) + sigma.trace() - 12 - torch.logdet(sigma))
    assert torch.allclose(laplace_kl(mu, chol, lam), kl)
    assert float(laplace_kl(torch.zeros(1, 12), torch.eye(12), torch.tensor(1.0))) == 0.0
    per_signal = laplace_posterior(model.origin, model.decoder, coords.expand(4, 36, 2), x)
    assert per_signal[1].shape == (4, 12, 12) and per_signal[2].shape == (4,)
    for ours, shared in zip(per_signal, (mu, chol.expand(4, 12, 12), lam.expand(4))):
        assert torch.allclose(ours, shared)
    eps = torch.randn(4, 12, dtype=torch.double)
    assert torch.allclose(laplace_sample(*per_signal, eps), laplace_sample(mu, chol, lam, eps))
    assert torch.allclose(laplace_kl(*per_signal), laplace_kl(mu, chol, lam))


def test_laplace_training_step_and_its_rules():
    model = laplace_gon()
    assert not hasattr(model, "to_mu")  # no heads: the posterior is the step's
    coords, x = grid(6, 6).double(), torch.rand(4, 36, 3, dtype=torch.double)
    out = model(coords, x, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(out["z"], model.encode(coords, x))  # the outer ELBO's sample
    assert torch.allclose(out["loss"], out["rec"] + 0.1 * out["kl"]) and out["kl"] > 0
    assert not list(model.origin.parameters())  # lambda is the ELBO's C x kl_weight, fixed
    scale = torch.tensor(2.0, dtype=torch.double)
    assert torch.allclose(model.origin.damping(scale), 3 * 0.1 + DAMPING_FLOOR * scale + ABS_FLOOR)
    for fields, words in [({"inner_steps": 2}, "one inner step"),
                          ({"origin_step": "learned"}, "gradient or gauss-newton")]:
        with pytest.raises(InputError, match=words):
            GON.check(Config.of(variational=True, **{"origin_step": "gauss-newton", **fields}))


def test_grid_prior_is_a_unit_variance_field_that_correlates_neighbours():
    """R R^T is the precision of a field over the 4 x 4 cells, each channel its own; its mean
    prior variance is 1; neighbours correlate more than far cells; length 0 is N(0, I)."""
    cfg = Config.of(latent_grid=4, latent_dim=2, variational=True, origin_step="gauss-newton",
                    prior_length=1.5)
    root = grid_prior(cfg).double()
    assert root.shape == (32, 32)
    cov = torch.linalg.inv(root @ root.T)
    assert abs(float(cov.diagonal().mean()) - 1) < 1e-6
    assert float(cov[0, 1]) == 0.0  # channels 0 and 1 of cell 0: independent fields
    corr = cov / cov.diagonal().sqrt()[:, None] / cov.diagonal().sqrt()
    cell = lambda row, col: 2 * (4 * row + col)  # noqa: E731  cell-major, channel 0
    assert corr[cell(1, 1), cell(1, 2)] > corr[cell(1, 1), cell(1, 3)] > corr[cell(1, 1), cell(3, 3)] > 0
    assert torch.allclose(corr[cell(1, 1), cell(1, 2)], corr[cell(1, 1), cell(2, 1)])  # isotropic
    eps = torch.randn(100_000, 32, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    z = prior_draw(root, eps)
    assert torch.allclose(z.T @ z / 100_000, cov, atol=0.03)
    assert grid_prior(Config.of(**{**cfg.to_dict(), "prior_length": 0.0})) is None
    assert prior_draw(None, eps) is eps


def test_laplace_step_and_kl_under_a_grid_prior():
    """mu = -(H + lambda P)^-1 g, Sigma = lambda (H + lambda P)^-1, KL to N(0, P^-1) in closed
    form; the training loss carries it; sampling draws from N(0, P^-1)."""
    model = laplace_gon(prior_length=1.0)
    root = model.origin.root.double()
    p = root @ root.T
    coords, x = grid(6, 6).double(), torch.rand(4, 36, 3, dtype=torch.double)
    mu, chol, lam = laplace_posterior(model.origin, model.decoder, coords, x)
    f, weights, v = shared_jacobian(model.decoder, coords, torch.zeros(12, dtype=torch.double))
    h = gauss_newton_matrix(weights, v)
    g = (2 / 36) * torch.einsum("bnc,ncd->bd", f - x, grid_jacobian(weights, v))
    assert torch.allclose(mu, -torch.linalg.solve(h + lam * p, g.T).T)
    sigma = lam * torch.linalg.inv(h + lam * p)
    kl = 0.5 * (torch.einsum("bi,ij,bj->b", mu, p, mu) + (p @ sigma).trace() - 12
                - torch.logdet(sigma) - torch.logdet(p))
    assert torch.allclose(laplace_kl(mu, chol, lam, root), kl)
    assert torch.allclose(model.origin.kl(mu, chol, lam), kl)  # log |P| held by the step
    at_prior = laplace_kl(torch.zeros(1, 12, dtype=torch.double), torch.linalg.cholesky(p),
                          torch.tensor(1.0), root)  # q = the prior
    assert float(at_prior) == pytest.approx(0.0, abs=1e-9)
    a, b = origin_affine(model.decoder, model.origin, coords)  # the exported encoder's map
    assert torch.allclose(x.flatten(1) @ a + b, mu) and torch.allclose(model.encode(coords, x), mu)
    out = model(coords, x, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(out["loss"], out["rec"] + 0.1 * out["kl"]) and out["kl"] > 0
    with pytest.raises(InputError, match="latent grid"):
        GON.check(Config.of(variational=True, origin_step="gauss-newton", prior_length=1.0))
    with pytest.raises(InputError, match="prior-length"):
        GON.check(Config.of(variational=True, latent_grid=2, prior_length=1.0))
    with pytest.raises(InputError, match="model gon"):
        model_class(Config.of(model="ae", prior_length=1.0))
