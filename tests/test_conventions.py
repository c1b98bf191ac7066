"""The user-facing conventions of /work/shared/CONVENTIONS.md, end to end through the CLI: sizes
are width x height, latents are one safetensors format, an fp16 export never replaces the fp32
file, and commands say what they chose for the user."""

import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from cli_helpers import cli_exit, run_cli

from inr_gon.cli.common import parse_size
from inr_gon.inference.inputs import training_items
from inr_gon.training.checkpoint import load_config

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
