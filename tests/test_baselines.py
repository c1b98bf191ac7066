"""The three model types behind --model train, keep the GON interface, and load back."""

import pytest
import torch

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.inference.evaluate import evaluate
from inr_gon.models.baselines import AutoEncoder, ConvEncoder, ConvGON, sample_image
from inr_gon.models.factory import build_model, check_config
from inr_gon.models.gon import GON
from inr_gon.models.render import grid
from inr_gon.run import load_run
from inr_gon.training.train import train


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("model", ["gon", "conv", "ae"])
def test_each_model_trains_a_few_steps_and_renders(tiny_cfg, tmp_path, capsys, model):
    cfg = tiny_cfg.replace(model=model, steps=4, preview_every=2, checkpoint_every=2)
    res = train(cfg, tmp_path / model, quiet=True)
    run = load_run(tmp_path / model)
    # the held-out figure is the PSNR of the held-out items, as `inr-gon eval --split val` scores them
    held_out = evaluate(run, cfg.dataset.data, split="val")
    assert res.step == 4 and res.val_items == held_out["items"] > 0
    assert res.val_psnr == pytest.approx(held_out["psnr"], abs=1e-3)
    out = run.model(grid(8, 8), torch.rand(3, 64, 3))
    assert out["pred"].shape == (3, 64, 3) and out["z"].shape == (3, cfg.net.latent_dim)
    assert run.render(torch.randn(2, cfg.net.latent_dim)).shape == (2, 8, 8, 3)
    assert (tmp_path / model / "previews" / "step_000004.png").is_file()
    capsys.readouterr()
    assert run.render(torch.randn(1, cfg.net.latent_dim), (16, 12)).shape == (1, 16, 12, 3)
    warned = "bilinear resample" in capsys.readouterr().err
    assert warned == (model == "conv")  # a fixed-resolution decoder says so


def test_training_moves_every_model_downhill():
    torch.manual_seed(0)
    coords, x = grid(8, 8), torch.rand(4, 64, 1) * 0.2 + 0.4
    for name in ("gon", "conv", "ae"):
        cfg = Config.of(height=8, width=8, channels=1, hidden=32, layers=3, latent_dim=8, model=name)
        model = build_model(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(15):
            out = model(coords, x)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            losses.append(float(out["loss"].detach()))
        assert losses[-1] < losses[0], name


def test_conv_gon_latent_is_the_negative_gradient_at_the_origin():
    torch.manual_seed(0)
    cfg = Config.of(height=8, width=8, channels=1, hidden=16, layers=3, latent_dim=4, model="conv")
    model = ConvGON(cfg).double()
    coords, x = grid(8, 8).double(), torch.rand(2, 64, 1, dtype=torch.double)
    z = model.encode(coords, x)
    eps = 1e-6
    for d in range(4):
        e = torch.zeros(1, 4, dtype=torch.double)
        e[0, d] = eps
        loss = lambda v: (model.decode(coords, v) - x[:1]).pow(2).sum(-1).mean(-1)  # noqa: E731
        assert abs(-(loss(e) - loss(-e)).item() / (2 * eps) - z[0, d].item()) < 1e-7


def test_conv_decoder_samples_its_own_pixels_exactly():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 5, 7)
    values = sample_image(img, grid(5, 7))
    assert torch.allclose(values, img.flatten(2).transpose(1, 2), atol=1e-6)
    cfg = Config.of(height=28, width=28, channels=1, hidden=64, layers=4, model="conv")
    assert ConvGON(cfg).net(torch.zeros(1, 32)).shape == (1, 1, 28, 28)  # 32 cropped to 28


def test_autoencoder_has_about_twice_the_gons_parameters():
    cfg = Config.of(height=28, width=28, channels=1, latent_dim=32, hidden=256, layers=4)
    gon, ae = GON(cfg), AutoEncoder(cfg.replace(model="ae"))
    assert 1.8 < count(ae) / count(gon) < 2.2
    enc = ae.encoder
    assert count(enc) == ConvEncoder.parameters_for(1, enc.net[0].out_channels, 32)


def test_detached_inner_gradient_treats_the_latent_as_a_constant():
    cfg = Config.of(height=6, width=6, channels=1, hidden=16, layers=2, latent_dim=4)
    coords, x = grid(6, 6), torch.rand(3, 36, 1)

    def grads(model, out):
        model.zero_grad()
        out["loss"].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    torch.manual_seed(1)
    full = GON(cfg)
    detached = GON(cfg.replace(detach_inner=True))
    detached.load_state_dict(full.state_dict())
    out = detached(coords, x)
    assert not out["z"].requires_grad
    with torch.no_grad():
        z = full.encode(coords, x)
    const = (full.decode(coords, z) - x).pow(2).mean()
    g_detached, g_const = grads(detached, out), grads(full, {"loss": const})
    assert torch.allclose(g_detached, g_const, atol=1e-7)
    # Back-propagating through the step changes the update: that is what the ablation removes.
    assert not torch.allclose(grads(full, full(coords, x)), g_detached, atol=1e-5)


@pytest.mark.parametrize("changes,words", [
    ({"model": "ae", "points_per_signal": 16}, "points-per-signal"),
    ({"model": "conv", "variational": True}, "variational"),
    ({"model": "ae", "detach_inner": True}, "detach"),
    ({"model": "conv", "modality": "sdf"}, "images"),
])
def test_impossible_model_combinations_are_refused(changes, words):
    with pytest.raises(InputError, match=words):
        check_config(Config.of(**changes))


def test_cli_model_flags_reach_the_config(capsys, tmp_path):
    from test_cli import TINY, assert_input_error, run_cli

    code, _, err = run_cli(capsys, "train", "builtin:shapes", "--out", tmp_path / "a", *TINY,
                           "--model", "ae", "--detach-inner")
    assert_input_error(code, err, "detach")
    code, _, err = run_cli(capsys, "train", "builtin:shapes", "--out", tmp_path / "c", *TINY,
                           "--model", "conv", "--variational")
    assert_input_error(code, err, "variational")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
