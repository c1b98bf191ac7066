"""Super-resolution (issue 13): the box-average observation model in the gradient-origin step,
fitting small inputs, and training on downsampled views (--observe-scales)."""

import imageio.v3 as iio
import numpy as np
import origin_oracles as gon
import pytest
import torch
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.demos.images import run_demo
from inr_gon.inference.fit import fit_images
from inr_gon.io import read_jsonl
from inr_gon.models.factory import build_model
from inr_gon.models.origin import OriginStep
from inr_gon.models.render import box_downsample, box_grid, grid
from inr_gon.models.siren import Siren
from inr_gon.presets import PRESETS
from inr_gon.run import Run, load_run
from inr_gon.training.train import train

OPTIONS = [(0, "first"), (3, "all")]  # (latent grid, modulation)


def decoder(grid_g: int, modulation: str) -> Siren:
    torch.manual_seed(0)
    return Siren(2, 4, 3, 16, 3, w0=10.0, latent_grid=grid_g, modulation=modulation).double()


def test_box_grid_is_the_fine_pixel_centres_inside_each_pixel():
    fine = box_grid(3, 5, 4)  # [3*5*16, 2]
    # the fine points are grid(12, 20) reordered, and each group's mean is its pixel's centre
    assert torch.equal(fine[torch.argsort(fine[:, 0] * 100 + fine[:, 1])],
                       grid(12, 20)[torch.argsort(grid(12, 20)[:, 0] * 100 + grid(12, 20)[:, 1])])
    assert torch.allclose(fine.reshape(15, 16, 2).mean(1), grid(3, 5), atol=1e-6)
    img = torch.rand(2, 8, 12, 3)
    assert torch.allclose(box_downsample(img, 4)[0, 1, 2], img[0, 4:8, 8:12].mean((0, 1)))


@pytest.mark.parametrize("grid_g,modulation", OPTIONS)
def test_observed_gradient_matches_autograd(grid_g, modulation):
    """The box-averaged inner loss through torch autograd vs the written-out step, float64."""
    dec = decoder(grid_g, modulation)
    coords, x = box_grid(4, 4, 3).double(), torch.rand(5, 16, 3, dtype=torch.float64)
    z = 0.1 * torch.randn(5, dec.latent_size, dtype=torch.float64)
    want = gon.latent_autograd(dec, coords, x, z, create_graph=False, box=9)
    # by hand: autograd of |A F - x|^2 / M with A the mean over each 9 fine points
    zz = z.clone().requires_grad_(True)
    loss = (dec(coords, zz).reshape(5, 16, 9, 3).mean(2) - x).pow(2).sum(-1).mean(-1).sum()
    (g,) = torch.autograd.grad(loss, zz)
    assert torch.allclose(want, z - g, atol=1e-12)
    assert torch.allclose(gon.latent_explicit(dec, coords, x, z, box=9), want, atol=1e-12)
    from_origin = gon.latent_autograd(dec, coords, x, create_graph=False, box=9)
    assert torch.allclose(gon.latent_shared_grid(dec, coords, x, box=9), from_origin, atol=1e-12)


@pytest.mark.parametrize("grid_g,modulation", OPTIONS)
def test_observed_gauss_newton_matches_autograd_jacobian(grid_g, modulation):
    dec = decoder(grid_g, modulation)
    coords, x = box_grid(3, 3, 2).double(), torch.rand(2, 9, 3, dtype=torch.float64)
    rule = OriginStep("gauss-newton", dec.latent_size).double()
    z0 = torch.zeros(dec.latent_size, dtype=torch.float64)
    aj = torch.autograd.functional.jacobian(
        lambda z: dec(coords, z[None])[0].reshape(9, 4, 3).mean(1), z0).reshape(27, -1)
    f0 = dec(coords, z0[None])[0].reshape(9, 4, 3).mean(1).flatten()
    h = aj.T @ aj * (2 / 9)
    g = (2 / 9) * (f0[None] - x.flatten(1)) @ aj
    lam = rule.damping(h.diagonal(dim1=-2, dim2=-1).mean(-1))
    want = -torch.linalg.solve(h + lam * torch.eye(len(h), dtype=h.dtype), g.T).T
    got = gon.origin_step(dec, rule, coords, x, box=4)
    assert torch.allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("kind", ["gradient", "learned", "gauss-newton"])
@pytest.mark.parametrize("grid_g,modulation", OPTIONS)
def test_observed_affine_form_equals_per_signal_form(kind, grid_g, modulation):
    dec = decoder(grid_g, modulation)
    rule = OriginStep(kind, dec.latent_size).double()
    coords, x = box_grid(4, 4, 2).double(), torch.rand(3, 16, 3, dtype=torch.float64)
    a, b = gon.origin_affine(dec, rule, coords, chunk=10, box=4)  # chunk rounds to 8
    per_signal = gon.origin_step(dec, rule, coords.expand(3, -1, -1), x, box=4)
    assert a.shape == (16 * 3, dec.latent_size)
    assert torch.allclose(x.flatten(1) @ a + b, per_signal, atol=1e-10)
    assert torch.allclose(gon.origin_step(dec, rule, coords, x, box=4), per_signal, atol=1e-10)


def test_downsampled_input_fitted_small_reproduces_itself(tmp_path):
    """A 16x16 image the model can represent (rendered from a random latent), box-downsampled
    to 8x8 and fitted at 8x8 by a 16x16 run: rendered at 16x16 and box-averaged back, it
    matches the 8x8 input after refinement on the observation (PSNR > 35 dB, every value
    within 0.05), far better than the one-pass step of an untrained decoder."""
    torch.manual_seed(0)
    cfg = Config.of(data="builtin:shapes", height=16, width=16, hidden=32, layers=3, latent_dim=8,
                    latent_grid=2, w0=10.0, w0_hidden=5.0).validate()
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.decoder.out.bias.fill_(0.5)  # mid-grey, so the target is not clipped
    run = Run(tmp_path, cfg, model, torch.device("cpu"))
    truth = run.render(0.3 * torch.randn(1, cfg.latent_size), (16, 16))
    small = box_downsample(torch.tensor(truth), 2).numpy()
    res = fit_images(run, small, ["a"], refine_steps=200, lr=1e-2)
    assert res.scores["psnr"][0] > 35 and res.scores["psnr"][0] > res.scores0["psnr"][0] + 10
    back = run.observed(res.z, (8, 8))
    assert np.abs(back - small).max() < 0.05
    assert run.render(res.z, (16, 16)).shape == (1, 16, 16, 3)


def test_small_input_is_observed_not_resampled(make_run):
    run = load_run(make_run(height=16, width=16))
    coords, k = run.observation((8, 4))
    assert k == 4 and coords.shape == (8 * 4 * 16, 2)
    assert run.observation((16, 16))[1] == 1
    assert run.observation((2, 2))[1] == 8  # capped at MAX_OBSERVE_FACTOR
    z = run.encode(np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32))
    assert z.shape == (2, run.cfg.latent_size) and torch.isfinite(z).all()


def test_observe_scales_trains_with_finite_loss(tmp_path):
    cfg = Config.of(data="builtin:shapes", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                    latent_grid=2, origin_step="gauss-newton", steps=3, batch_size=4,
                    observe_scales="1,2,4", preview_every=0, checkpoint_every=0, log_every=1)
    train(cfg, tmp_path / "run", quiet=True)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 3 and np.isfinite(losses).all()


@pytest.mark.parametrize("scales,words", [("3", ["3", "8x8"]), ("0", ["observe"]),
                                          ("1,x", ["observe"])])
def test_bad_observe_scales(capsys, tmp_path, scales, words):
    code, _, err = run_cli(capsys, "train", "builtin:shapes", "--size", "8", "--steps", "1",
                           "--observe-scales", scales, "--out", tmp_path / "r")
    assert_input_error(code, err, *words)


def test_one_pixel_input_exits_2(capsys, make_run, tmp_path):
    run = make_run(height=16, width=16)
    path = tmp_path / "one.png"
    iio.imwrite(path, np.zeros((1, 1, 3), np.uint8))
    code, _, err = run_cli(capsys, "fit", run, path)
    assert_input_error(code, err, "1x1", "2x2")


def test_fit_cli_small_input(capsys, make_run, tmp_path):
    run = make_run(height=16, width=16)
    path = tmp_path / "small.png"
    iio.imwrite(path, (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8))
    code, out, err = run_cli(capsys, "fit", run, path, "--json", "--refine-steps", "2")
    assert code == 0, err
    assert "resampled" not in err
    code, _, err = run_cli(capsys, "render", run, path, "--size", "32", "--out", tmp_path / "r")
    assert code == 0 and "resampled" not in err, err
    assert iio.imread(tmp_path / "r" / "small.png").shape[:2] == (32, 32)


def test_demo_reports_bicubic_beside_the_4x_render(tmp_path):
    cfg = Config.of(data="builtin:shapes:16", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                    steps=2, batch_size=4, preview_every=0, checkpoint_every=0, device="cpu")
    sr = Config.of(**{**PRESETS["demo_superres"], "data": "builtin:shapes:16", "height": 16,
                      "width": 16, "hidden": 16, "layers": 2, "latent_dim": 4, "steps": 2,
                      "batch_size": 4, "device": "cpu"})
    f = run_demo(tmp_path / "demo", quiet=True, cfg=cfg, sr_cfg=sr)
    assert np.isfinite(f["val_psnr_4x_bicubic"]) and np.isfinite(f["val_psnr_4x_vs_truth"])
    assert np.isfinite(f["val_psnr_4x_gon_render"]) and f["superres_steps"] == 2
    assert (tmp_path / "demo" / "superres" / "config.json").exists()  # the 4x's own run
    strip = iio.imread(tmp_path / "demo" / "demo_heldout_4x.png")
    assert strip.shape[1] > strip.shape[0] // f["val_items"] * 3  # four 32 px columns
