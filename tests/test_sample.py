"""Prior sampling and interpolation (inr_gon/sample.py, `inr-gon sample`, `inr-gon interpolate`)."""

import importlib.util

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from test_cli import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.inference.inputs import training_items
from inr_gon.inference.latents import load_latents
from inr_gon.inference.sample import fitted_gaussian, sample_latents, slerp
from inr_gon.models.laplace import grid_prior
from inr_gon.run import load_run
from inr_gon.training.train import train

TINY = dict(data="builtin:shapes", height=8, width=8, hidden=16, layers=2, latent_dim=4, steps=4,
            batch_size=8, lr=3e-3, preview_every=0, checkpoint_every=0, val_fraction=0.25)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    train(Config.of(**TINY), root / "plain", quiet=True)
    train(Config.of(**TINY, variational=True, kl_weight=1e-2), root / "vgon", quiet=True)
    train(Config.of(**TINY, variational=True, kl_weight=1e-2, origin_step="gauss-newton"),
          root / "vlaplace", quiet=True)  # the Laplace posterior of the Gauss-Newton step
    train(Config.of(**TINY, variational=True, kl_weight=1e-2, origin_step="gauss-newton",
                    modulation="all", latent_grid=2, prior_length=1.0), root / "vfield", quiet=True)
    return root


@pytest.fixture
def pngs(runs, tmp_path):
    _, images = training_items(load_run(runs / "plain").cfg, 2)
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    for p, img in zip(paths, images):
        iio.imwrite(p, (img * 255 + 0.5).astype(np.uint8))
    return paths


@pytest.mark.parametrize("name", ["vgon", "vlaplace"])
def test_variational_run_samples_from_its_prior(runs, capsys, tmp_path, name):
    code, _, err = run_cli(capsys, "sample", runs / name, "-n", "5", "--size", "12",
                           "--out", tmp_path / "s", "--device", "cpu")
    assert code == 0, err
    assert "model prior" in err
    files = sorted(p.name for p in (tmp_path / "s").glob("sample_*.png"))
    assert len(files) == 5 and (tmp_path / "s" / "grid.png").is_file()
    assert iio.imread(tmp_path / "s" / files[0]).shape == (12, 12, 3)
    names, z = load_latents(tmp_path / "s" / "latents.safetensors", 4)
    assert z.shape == (5, 4) and names[0] == "sample_0000"
    run = load_run(runs / name)
    _, again = sample_latents(run, 5, "model", seed=0)
    assert torch.equal(z, again)  # seeded: the same draw twice


def test_model_prior_is_standard_normal(runs):
    _, z = sample_latents(load_run(runs / "vgon"), 4000, "model", seed=1)
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05


def test_grid_prior_run_draws_from_its_field(runs, capsys, tmp_path):
    """A run trained with --prior-length samples N(0, P^-1): neighbouring cells alike."""
    run = load_run(runs / "vfield")
    root = grid_prior(run.cfg).double()
    _, z = sample_latents(run, 20_000, "model", seed=1)
    cov = torch.linalg.inv(root @ root.T)
    assert torch.allclose(torch.cov(z.double().T), cov, atol=0.05)
    assert float(cov[0, 4]) > 0.3  # channel 0 of cells 0 and 1
    code, _, err = run_cli(capsys, "sample", runs / "vfield", "-n", "3", "--out", tmp_path / "s",
                           "--device", "cpu")
    assert code == 0, err


def test_fitted_prior_matches_the_training_latents(runs):
    run = load_run(runs / "plain")
    mean, cov = fitted_gaussian(run)
    _, images = training_items(run.cfg, 1024)
    z = run.encode(images).double()
    assert torch.allclose(mean, z.mean(0)) and torch.allclose(cov, torch.cov(z.T))
    used, draws = sample_latents(run, 3000, "auto", seed=0)
    assert used == "fitted"
    assert torch.allclose(draws.double().mean(0), mean, atol=4 * float(cov.diagonal().max()) ** 0.5 / 50)



def test_sample_with_the_fitted_prior_from_the_command_line(runs, capsys, tmp_path):
    """`sample --prior fitted` on a variational run: the Gaussian of its training latents, not
    its N(0, I) prior; the saved latents are exactly sample_latents(run, n, "fitted", seed)."""
    code, _, err = run_cli(capsys, "sample", runs / "vgon", "--prior", "fitted", "-n", "3",
                           "--seed", "2", "--out", tmp_path / "s", "--device", "cpu")
    assert code == 0, err
    assert "fitted prior" in err
    assert len(list((tmp_path / "s").glob("sample_*.png"))) == 3
    _, z = load_latents(tmp_path / "s" / "latents.safetensors", 4)
    run = load_run(runs / "vgon")
    assert torch.equal(z, sample_latents(run, 3, "fitted", seed=2)[1])
    assert not torch.equal(z, sample_latents(run, 3, "model", seed=2)[1])

def test_non_variational_run_refuses_the_model_prior(runs, capsys):
    code, _, err = run_cli(capsys, "sample", runs / "plain", "--prior", "model")
    assert_input_error(code, err, "not variational", "--prior fitted")
    code, _, err = run_cli(capsys, "sample", runs / "plain", "--prior", "gauss")
    assert_input_error(code, err, "--prior")
    code, _, err = run_cli(capsys, "sample", runs / "plain", "-n", "0")
    assert_input_error(code, err, "-n")


def test_slerp_ends_norms_and_angle():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.linspace(2, 4, 5))
    angles = torch.atan2(path[:, 1], path[:, 0])
    assert torch.allclose(angles.diff(), torch.full((4,), torch.pi / 8), atol=1e-6)
    same = slerp(a, 3 * a, torch.tensor([0.5]))  # parallel: lerp
    assert torch.allclose(same[0], 2 * a)


def test_interpolation_gif_is_written(runs, pngs, capsys, tmp_path):
    out = tmp_path / "walk.gif"
    code, _, err = run_cli(capsys, "interpolate", runs / "plain", *pngs, "--frames", "6",
                           "--size", "16", "--out", out, "--quiet")
    assert code == 0, err
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (6, 16, 16)
    assert not np.array_equal(frames[0], frames[-1])


def test_interpolation_mp4_is_written_at_its_size(runs, pngs, capsys, tmp_path):
    out = tmp_path / "walk.mp4"  # imageio-ffmpeg comes with the dev extra
    code, _, err = run_cli(capsys, "interpolate", runs / "plain", *pngs, "--frames", "5",
                           "--size", "15", "--out", out, "--quiet")
    assert code == 0 and err == ""  # no resampling warning from the writer
    frames = iio.imread(out, index=None, plugin="FFMPEG")
    assert frames.shape == (5, 16, 16, 3)  # odd sides padded to even by edge repetition
    gif = tmp_path / "walk.gif"
    assert run_cli(capsys, "interpolate", runs / "plain", *pngs, "--frames", "5", "--size", "15",
                   "--out", gif, "--quiet")[0] == 0
    same = iio.imread(gif, index=None)[..., :3].astype(float)  # lossless: the frames themselves
    assert np.abs(frames[:, :15, :15].astype(float) - same).mean() < 8  # H.264 is lossy, not wrong
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_mp4_without_imageio_ffmpeg_is_one_line(runs, pngs, capsys, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "imageio_ffmpeg" else find_spec(name, *a))
    code, _, err = run_cli(capsys, "interpolate", runs / "plain", *pngs, "--frames", "4",
                           "--out", tmp_path / "walk.mp4", "--quiet")
    assert_input_error(code, err, "imageio-ffmpeg")
    assert not (tmp_path / "walk.mp4").exists()


@pytest.mark.parametrize("args,words", [
    (["--out", "walk.avi"], ".gif or .mp4"),
    (["--out", "w.gif", "--frames", "1"], "--frames"),
    (["--out", "w.gif", "--fps", "0"], "--fps"),
])
def test_interpolate_bad_flags(runs, pngs, capsys, args, words):
    code, _, err = run_cli(capsys, "interpolate", runs / "plain", *pngs, *args)
    assert_input_error(code, err, words)


def test_sample_refuses_non_image_runs(runs):
    run = load_run(runs / "plain")
    run.cfg = run.cfg.replace(modality="sdf")
    with pytest.raises(InputError, match="an sdf run renders no images"):
        run.require_images()
