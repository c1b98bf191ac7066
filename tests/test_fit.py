"""Fitting new signals (inr_gon/fit.py, `inr-gon fit`, `inr-gon eval`)."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from test_cli import assert_input_error, run_cli

from inr_gon.inference.evaluate import evaluate
from inr_gon.inference.fit import fit_images
from inr_gon.inference.inputs import training_items
from inr_gon.inference.latents import load_latents, save_latents
from inr_gon.run import load_run
from inr_gon.training.train import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from inr_gon.config import Config

    cfg = Config.of(data="builtin:shapes", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                    steps=20, batch_size=8, lr=3e-3, preview_every=0, checkpoint_every=0,
                    val_fraction=0.25)
    out = tmp_path_factory.mktemp("fit") / "run"
    train(cfg, out, quiet=True)
    return out


@pytest.fixture
def pngs(run_dir, tmp_path):
    _, images = training_items(load_run(run_dir).cfg, 3)
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"in{i}.png")
        iio.imwrite(paths[-1], (img * 255 + 0.5).astype(np.uint8))
    return paths


def test_refine_steps_improve_the_fit_and_step_zero_is_the_encoder(run_dir):
    run = load_run(run_dir)
    names, images = training_items(run.cfg, 6)
    res = fit_images(run, images, names, refine_steps=30)
    assert torch.equal(res.z0, run.encode(images).cpu())
    assert res.scores["psnr"].mean() > res.scores0["psnr"].mean()
    assert res.scores["mse"].mean() < 0.99 * res.scores0["mse"].mean()
    assert (res.scores["mse"] <= res.scores0["mse"] + 1e-7).all()
    s = res.summary()
    assert s["refine_steps"] == 30 and len(s["items"]) == 6
    assert set(s["mean"]) == {"mse_0", "psnr_0", "ssim_0", "mse_30", "psnr_30", "ssim_30"}


def test_a_latent_does_not_depend_on_the_signals_fitted_with_it(run_dir):
    run = load_run(run_dir)
    names, images = training_items(run.cfg, 4)
    together = fit_images(run, images, names, refine_steps=5).z
    alone = fit_images(run, images[:1], names[:1], refine_steps=5).z
    assert torch.allclose(together[:1], alone, atol=1e-5)


def test_saved_latents_render_identically(run_dir, tmp_path):
    run = load_run(run_dir)
    names, images = training_items(run.cfg, 3)
    res = fit_images(run, images, names, refine_steps=3)
    save_latents(tmp_path / "z.safetensors", res.names, res.z)
    names2, z2 = load_latents(tmp_path / "z.safetensors", run.cfg.net.latent_dim)
    assert names2 == res.names
    assert np.array_equal(run.render(res.z, (17, 9)), run.render(z2, (17, 9)))


def test_fit_cli_table_json_and_latents_file(run_dir, pngs, capsys, tmp_path):
    z_file = tmp_path / "lat.safetensors"
    code, out, err = run_cli(capsys, "fit", run_dir, *pngs, "--refine-steps", "4", "--out", z_file,
                             "--json", "--device", "cpu")
    assert code == 0, err
    report = json.loads(out)
    assert [r["name"] for r in report["items"]] == ["in0", "in1", "in2"]
    assert {"psnr_0", "ssim_0", "psnr_4", "ssim_4"} <= set(report["items"][0])
    assert load_latents(z_file, 4)[1].shape == (3, 4)
    code, out, err = run_cli(capsys, "fit", run_dir, pngs[0])
    assert code == 0 and "PSNR" in out and "SSIM" in out and "in0" in out
    assert "one gradient step from z = 0" in " ".join(out.split())  # the caption may wrap
    code, _, err = run_cli(capsys, "render", run_dir, "--latents", z_file, "--size", "24",
                           "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    assert iio.imread(tmp_path / "r" / "in1.png").shape == (24, 24, 3)


def test_inputs_of_another_size_are_resampled_with_a_warning(run_dir, capsys, tmp_path):
    iio.imwrite(tmp_path / "big.png", (np.random.rand(20, 30, 3) * 255).astype(np.uint8))
    code, out, err = run_cli(capsys, "fit", run_dir, tmp_path / "big.png", "--quiet")
    assert code == 0 and "warning:" in err and "resampled to 8x8" in err


def test_latent_file_of_the_wrong_dimension(run_dir, capsys, tmp_path):
    save_latents(tmp_path / "wrong.safetensors", ["a"], torch.zeros(1, 7))
    code, _, err = run_cli(capsys, "render", run_dir, "--latents", tmp_path / "wrong.safetensors")
    assert_input_error(code, err, "dimension 7", "4")


@pytest.mark.parametrize("args,words", [
    (["--refine-steps", "-1"], "--refine-steps"),
    (["--refine-lr", "0"], "--refine-lr"),
    (["--backend", "tf"], "--backend"),
])
def test_fit_bad_flags(run_dir, pngs, capsys, args, words):
    code, _, err = run_cli(capsys, "fit", run_dir, pngs[0], *args)
    assert_input_error(code, err, words)


def test_fit_missing_input(run_dir, capsys, tmp_path):
    code, _, err = run_cli(capsys, "fit", run_dir, tmp_path / "nope.png")
    assert_input_error(code, err, "nope.png")


def test_eval_means_over_a_dataset(run_dir, capsys):
    figures = evaluate(load_run(run_dir), "builtin:shapes", refine_steps=3, split="val")
    assert figures["items"] == 128 and figures["split"] == "val"
    assert figures["psnr_refined"] > figures["psnr"] and 0 < figures["ssim"] <= 1
    code, out, err = run_cli(capsys, "eval", run_dir, "builtin:shapes", "--limit", "5", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["items"] == 5 and {"psnr", "ssim", "mse"} <= set(report)


def test_eval_split_needs_the_runs_own_data(run_dir, capsys, tmp_path):
    np.save(tmp_path / "other.npy", np.zeros((3, 8, 8), np.uint8))
    code, _, err = run_cli(capsys, "eval", run_dir, tmp_path / "other.npy", "--split", "val")
    assert_input_error(code, err, "--split")
    code, out, err = run_cli(capsys, "eval", run_dir, tmp_path / "other.npy", "--json")
    assert code == 0 and json.loads(out)["items"] == 3


@pytest.mark.parametrize("variational", [False, True])
def test_fit_with_the_exported_encoder_matches_torch(make_run, capsys, tmp_path, variational):
    run_path = make_run(variational=variational, kl_weight=0.3)
    code, _, err = run_cli(capsys, "export", run_path, "--with-encoder", "--quiet")
    assert code == 0, err
    _, images = training_items(load_run(run_path).cfg, 3)
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"in{i}.png")
        iio.imwrite(paths[-1], (img * 255 + 0.5).astype(np.uint8))
    z = {}
    for backend in ("torch", "onnx"):
        code, _, err = run_cli(capsys, "fit", run_path, *paths, "--backend", backend, "--out",
                               tmp_path / f"{backend}.safetensors", "--quiet")
        assert code == 0, err
        z[backend] = load_latents(tmp_path / f"{backend}.safetensors", 4)[1]
    assert torch.allclose(z["onnx"], z["torch"], atol=1e-4)


def test_eval_of_many_grid_latents_stays_within_max_memory(make_run, capsys, monkeypatch):
    """Issue 22 item 6: `eval` (and fit) score every item's render within --max-memory, however
    many items: each decoder call holds latents x points x bytes_per_point <= the cap."""
    from inr_gon.models.render import bytes_per_point

    run = make_run(modulation="all", latent_grid=4, latent_dim=8)
    decoder = load_run(run).model.decoder
    calls = []
    real = type(decoder).forward

    def counted(self, c, z):
        calls.append((z.shape[0], c.shape[0]))
        return real(self, c, z)

    monkeypatch.setattr(type(decoder), "forward", counted)
    code, out, err = run_cli(capsys, "eval", run, "builtin:shapes:300", "--max-memory", "1",
                             "--json", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["items"] == 300
    rendered = [b * n for b, n in calls if n == 64]  # the renders at 8x8 (encodes are batched)
    assert max(rendered) * bytes_per_point(decoder) <= 2**20 < 300 * 1024 * bytes_per_point(decoder)
