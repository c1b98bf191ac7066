"""The gradient-origin encoder graphs (explicit cos chain, shared-grid affine map) against autograd."""

import pytest
import torch
from origin_oracles import latent_autograd

from inr_gon.config import Config
from inr_gon.export.encoder import EncoderGraph, GridEncoder, grid_affine
from inr_gon.models.gon import GON, inner_kl_weight
from inr_gon.models.origin import inner_loss, kl_normal
from inr_gon.models.render import grid


def gon(**fields):
    torch.manual_seed(0)
    base = dict(hidden=32, layers=3, latent_dim=6, channels=3, latent_init=5.0)
    return GON(Config.of(**{**base, **fields})).eval()


def reference(model, coords, values):
    """z by autograd.grad (k inner steps; variational: on the ELBO through the heads, noise
    off), then to_mu: what the explicit graph writes out."""
    z = None
    for _ in range(model.cfg.net.inner_steps):
        if model.cfg.net.variational:
            z = elbo_step(model, coords, values, z)
        else:
            z = latent_autograd(model.decoder, coords, values, z0=z, create_graph=False).detach()
    return model.to_mu(z) if model.cfg.net.variational else z


def elbo_step(model, coords, values, z):
    z0 = (values.new_zeros(values.shape[0], model.cfg.latent_size) if z is None else z).requires_grad_()
    mu, logvar = model.to_mu(z0), model.to_logvar(z0)
    loss = inner_loss(model.decoder(coords, mu), values).sum()
    loss = loss + inner_kl_weight(model.cfg) * kl_normal(mu, logvar).sum()
    return (z0 - torch.autograd.grad(loss, z0)[0]).detach()


@pytest.mark.parametrize("fields", [
    {},
    {"modality": "sdf", "channels": 1},
    {"variational": True},
    {"variational": True, "inner_steps": 2, "kl_weight": 0.3},
    {"inner_steps": 3},
    {"variational": True, "latent_grid": 2, "modulation": "all", "latent_dim": 2},
])
def test_explicit_encoder_matches_autograd(fields):
    model = gon(**fields)
    d, c = model.cfg.coord_dim, model.cfg.out_dim
    coords = torch.rand(4, 50, d) * 2 - 1
    values = torch.rand(4, 50, c)
    with torch.no_grad():
        ours = EncoderGraph(model)(coords, values)
    ref = reference(model, coords, values)
    assert ours.shape == (4, model.cfg.latent_size)
    assert (ours - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max())


def test_explicit_encoder_broadcasts_one_shared_grid():
    model = gon()
    coords, values = grid(5, 7), torch.rand(3, 35, 3)
    with torch.no_grad():
        shared = EncoderGraph(model)(coords[None], values)
        per_item = EncoderGraph(model)(coords.expand(3, 35, 2), values)
        assert torch.allclose(shared, per_item, atol=1e-6)
        assert torch.allclose(shared, model.encode(coords, values), atol=1e-5)


@pytest.mark.parametrize("variational", [False, True])
def test_grid_encoder_is_the_gradient_origin_step(variational):
    model = gon(variational=variational, kl_weight=0.3)
    coords, values = grid(6, 5), torch.rand(4, 30, 3)
    a, b = grid_affine(model, coords, chunk=7)  # chunks that do not divide N
    assert a.shape == (30 * 3, 6) and b.shape == (6,)
    with torch.no_grad():
        ours = GridEncoder(a, b)(values)
        ref = model.encode(coords, values)
    assert (ours - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max())
    ref64 = reference(model.double(), coords.double(), values.double())
    assert torch.allclose(values.double().flatten(1) @ a + b, ref64, atol=1e-10)


def test_grid_encoder_refuses_several_inner_steps():
    with pytest.raises(ValueError):
        grid_affine(gon(inner_steps=2), grid(4, 4))


@pytest.mark.parametrize("fields", [
    {"modulation": "all"},
    {"modulation": "all", "latent_grid": 3, "latent_dim": 2},
    {"modality": "sdf", "channels": 1, "latent_grid": 2, "latent_dim": 2, "modulation": "all"},
    {"origin_step": "learned", "inner_steps": 2, "latent_grid": 2, "latent_dim": 2},
])
def test_explicit_encoder_of_issue12_options_matches_autograd(fields):
    model = gon(**fields)
    if model.cfg.net.origin_step == "learned":
        with torch.no_grad():
            model.origin.alpha.uniform_(0.5, 2.0)
    d, c = model.cfg.coord_dim, model.cfg.out_dim
    coords, values = torch.rand(3, 40, d) * 2 - 1, torch.rand(3, 40, c)
    z, alpha = None, getattr(model.origin, "alpha", 1.0)
    for _ in range(model.cfg.net.inner_steps):  # reference: autograd's gradient, scaled by alpha
        z0 = torch.zeros(3, model.cfg.latent_size) if z is None else z
        z = (z0 - alpha * (z0 - latent_autograd(model.decoder, coords, values, z0, False))).detach()
    with torch.no_grad():
        ours = EncoderGraph(model)(coords, values)
    assert ours.shape == z.shape == (3, model.cfg.latent_size)
    assert (ours - z).abs().max() <= 1e-5 * max(1.0, z.abs().max())


@pytest.mark.parametrize("variational", [False, True])
@pytest.mark.parametrize("kind", ["learned", "gauss-newton"])
def test_grid_encoder_holds_the_learned_and_gauss_newton_steps(kind, variational):
    model = gon(origin_step=kind, latent_grid=2, latent_dim=3, modulation="all",
                variational=variational)
    coords, values = grid(6, 5), torch.rand(4, 30, 3)
    a, b = grid_affine(model, coords, chunk=7)
    assert a.shape == (30 * 3, 12) and b.shape == (12,)
    with torch.no_grad():
        ref = model.encode(coords, values)
    got = GridEncoder(a, b)(values)
    assert (got - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max())


def test_gauss_newton_has_no_general_encoder_graph():
    with pytest.raises(ValueError, match="solve"):
        EncoderGraph(gon(origin_step="gauss-newton"))
