"""The user-facing conventions of /work/shared/CONVENTIONS.md, end to end through the CLI: sizes
are width x height, latents are one safetensors format, an fp16 export never replaces the fp32
file, and commands say what they chose for the user."""

import os
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from cli_helpers import assert_input_error, cli_exit, run_cli

from inr_gon.cli.common import parse_size
from inr_gon.export.info import read_info
from inr_gon.inference.inputs import training_items
from inr_gon.run import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "2", "--batch-size", "4", "--hidden", "16", "--layers", "2",
        "--latent-dim", "4", "--quiet"]


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """A run trained on 24-wide, 16-tall images (--size 24x16)."""
    out = tmp_path_factory.mktemp("conv") / "run"
    assert cli_exit("train", "builtin:shapes", "--size", "24x16", "--out", out, *TINY) == 0
    return out


# ---- sizes are WxH ---------------------------------------------------------------------------

def test_parse_size_reads_width_then_height():
    assert parse_size("1024x768") == (768, 1024)  # (H, W) inside
    assert parse_size("64") == (64, 64)
    with pytest.raises(Exception, match="WxH"):
        parse_size("big")


def test_train_size_is_width_by_height(wide_run):
    cfg = load_config(wide_run)
    assert (cfg.dataset.width, cfg.dataset.height) == (24, 16)
    _, images = training_items(cfg, 1)
    assert images.shape[1:3] == (16, 24)  # [B, H, W, C]: the items it trained on


def test_render_size_is_width_by_height(wide_run, capsys, tmp_path):
    code, _, err = run_cli(capsys, "render", wide_run, "--size", "48x32", "-n", "2",
                           "--out", tmp_path / "r")
    assert code == 0, err
    for png in (tmp_path / "r").glob("*.png"):
        if png.name != "grid.png":
            assert iio.imread(png).shape[:2] == (32, 48)  # 48 wide, 32 tall
    assert "at 48x32" in err


def test_resample_warning_prints_width_by_height(wide_run, capsys, tmp_path):
    iio.imwrite(tmp_path / "photo.png", np.zeros((20, 30, 3), np.uint8))  # 30 wide, 20 tall
    code, _, err = run_cli(capsys, "render", wide_run, tmp_path / "photo.png", "--out", tmp_path / "r",
                           "--quiet")
    assert code == 0, err
    assert "30x20 resampled to 24x16" in err


def test_no_height_by_width_in_user_facing_text():
    """Help strings, messages and docs write sizes WxH; the code's (H, W) tuples stay inside."""
    found = []
    for folder in ("cli", "datasets", "export", "inr_gon", "examples", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and re.search(r"\bHxW\b", path.read_text()):
                found.append(str(path.relative_to(ROOT)))
    assert "HxW" not in (ROOT / "README.md").read_text()
    assert not found, found


# ---- one latent file format ------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(wide_run, tmp_path_factory):
    """Latents of two images, written by `fit --out z.safetensors`."""
    d = tmp_path_factory.mktemp("fit")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        iio.imwrite(d / f"{name}.png", (rng.random((16, 24, 3)) * 255).astype(np.uint8))
    assert cli_exit("fit", wide_run, d / "a.png", d / "b.png", "--out", d / "z.safetensors",
                    "--quiet") == 0
    return d


def test_render_latents_names_the_expected_format(wide_run, fitted, capsys, tmp_path):
    np.save(tmp_path / "lat.npy", np.zeros((2, 4), np.float32))
    np.savez(tmp_path / "lat.npz", z=np.zeros((2, 4), np.float32))
    (tmp_path / "lat.safetensors").write_bytes(b"\xff" * 64)  # the name alone is not enough
    for bad, got in [("lat.npy", "got a .npy array"), ("lat.npz", "got a zip archive"),
                     ("lat.safetensors", "not safetensors")]:
        code, _, err = run_cli(capsys, "render", wide_run, "--latents", tmp_path / bad)
        assert_input_error(code, err, bad, "latents must be a .safetensors file written by "
                           "`inr-gon fit --out`", got)
        assert "header too large" not in err
    code, _, err = run_cli(capsys, "render", wide_run, "--latents", wide_run / "model.safetensors")
    assert_input_error(code, err, "no floating-point 'latents' tensor", "fit --out")
    code, _, err = run_cli(capsys, "render", wide_run, "--latents", fitted / "z.safetensors",
                           "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["a.png", "b.png", "grid.png"]


def test_interpolate_walks_between_latent_files(wide_run, fitted, capsys, tmp_path):
    code, _, err = run_cli(capsys, "sample", wide_run, "-n", "3", "--out", tmp_path / "s",
                           "--quiet")
    assert code == 0, err
    z = fitted / "z.safetensors"
    code, _, err = run_cli(capsys, "interpolate", wide_run, f"{z}:b",
                           f"{tmp_path / 's' / 'latents.safetensors'}:sample_0002", "--frames", "3",
                           "--out", tmp_path / "w.gif")
    assert code == 0, err
    assert iio.imread(tmp_path / "w.gif").shape[:3] == (3, 16, 24)
    code, _, err = run_cli(capsys, "interpolate", wide_run, f"{z}:nope", z, "--out", tmp_path / "x.gif")
    assert_input_error(code, err, "no latent named 'nope'", "a, b")


def test_interpolate_writes_to_the_run_by_default_and_says_where(wide_run, fitted, capsys):
    code, _, err = run_cli(capsys, "interpolate", wide_run, fitted / "a.png", fitted / "b.png",
                           "--frames", "2")
    assert code == 0, err
    gif = wide_run / "interpolate" / "a_to_b.gif"
    assert gif.is_file() and f"wrote {gif}" in err


def test_numpy_only_example_reads_latent_files(wide_run, fitted, tmp_path):
    """examples/onnx_render.py reads `fit --out` latents with numpy alone (no safetensors, torch)."""
    pytest.importorskip("onnxruntime")
    assert cli_exit("export", wide_run, "--quiet") == 0
    script = ROOT / "examples" / "onnx_render.py"
    guard = ("import runpy, sys; sys.modules['safetensors'] = None; sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__'); "
             "assert 'torch' not in sys.modules and not any(m.startswith('inr_gon') for m in sys.modules)")
    args = [sys.executable, "-c", guard, str(script), str(wide_run / "decoder.onnx"), "--latents"]
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    p = subprocess.run([*args, str(fitted / "z.safetensors"), "--size", "30x10",
                        "--out", str(tmp_path / "g.png")], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "2 images at 30x10" in p.stdout
    assert iio.imread(tmp_path / "g.png").shape[:2] == (10 + 4, 2 * 32 + 2)  # 2 tiles side by side
    np.save(tmp_path / "lat.npy", np.zeros((2, 4), np.float32))
    p = subprocess.run([*args, str(tmp_path / "lat.npy")], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "latents must be a .safetensors file" in p.stderr


# ---- an fp16 export never replaces the fp32 file ---------------------------------------------

def test_fp16_export_sits_beside_the_fp32_decoder(make_run, capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    run = make_run()
    assert run_cli(capsys, "export", run, "--quiet")[0] == 0
    fp32 = (run / "decoder.onnx").read_bytes()
    code, _, err = run_cli(capsys, "export", run, "--fp16", "--with-encoder")
    assert code == 0, err
    assert (run / "decoder.onnx").read_bytes() == fp32
    assert read_info(run / "decoder_fp16.onnx").precision == "fp16"
    assert read_info(run / "encoder.onnx").precision == "fp32"  # encoders stay float32
    assert {p.name for p in run.glob("*.onnx")} == {"decoder.onnx", "decoder_fp16.onnx",
                                                    "encoder.onnx", "encoder_grid.onnx"}
    code, _, err = run_cli(capsys, "export", run, "--fp16", "--out", run / "decoder.onnx")
    assert_input_error(code, err, "fp32 decoder", "never replaces")
    assert (run / "decoder.onnx").read_bytes() == fp32

    # render --backend onnx takes the fp32 file unless --fp16 or a file is named.
    for extra, used in [([], "onnxruntime"), (["--fp16"], "decoder_fp16.onnx on"),
                        (["--decoder", run / "decoder_fp16.onnx"], "decoder_fp16.onnx on")]:
        code, _, err = run_cli(capsys, "render", run, "--backend", "onnx", "-n", "1", *extra,
                               "--out", tmp_path / "r")
        assert code == 0 and used in err, err
        assert extra or (": decoder.onnx on" in err and "decoder_fp16" not in err), err
    code, _, err = run_cli(capsys, "render", run, "--fp16", "-n", "1")
    assert_input_error(code, err, "--backend onnx")


def test_render_fp16_without_its_file_says_what_is_there(make_run, capsys):
    pytest.importorskip("onnxruntime")
    run = make_run()
    assert run_cli(capsys, "export", run, "--fp16", "--quiet")[0] == 0
    assert not (run / "decoder.onnx").exists()
    code, _, err = run_cli(capsys, "render", run, "--backend", "onnx", "-n", "1")
    assert_input_error(code, err, "decoder.onnx: no such file", "decoder_fp16.onnx is there",
                       "add --fp16")


# ---- commands say what they chose ------------------------------------------------------------

def test_render_without_inputs_says_how_many_training_items(capsys, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        iio.imwrite(photos / f"p{i}.png", (rng.random((8, 8, 3)) * 255).astype(np.uint8))
    run = tmp_path / "run"
    assert cli_exit("train", photos, "--size", "8", "--val-fraction", "0.2", "--out", run, *TINY) == 0
    code, _, err = run_cli(capsys, "render", run, "-n", "2", "--out", tmp_path / "r")
    assert code == 0, err
    assert "rendering 2 of 4 training items; -n N for more" in err
    code, _, err = run_cli(capsys, "render", run, "--out", tmp_path / "r")  # default -n 8
    assert code == 0 and "rendering all 4 training items" in err, err
    code, _, err = run_cli(capsys, "render", run, "-n", "2", "--out", tmp_path / "r", "--quiet")
    assert code == 0 and err == "", err
