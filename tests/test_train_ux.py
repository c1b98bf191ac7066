"""Issue 15 points 4, 8 and 9 on the training side: real plots, TensorBoard, the warnings a new
user needs (untrained run, batch above the set, one held-out item, --resume with equal values),
the pointer to the next command, and the memory estimate with its cap."""

import json
import sys

import pytest
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.plots import line_figure, training_figure
from inr_gon.training import memory

TINY = ["--size", "8", "--hidden", "8", "--layers", "1", "--latent-dim", "4", "--device", "cpu",
        "--preview-every", "0", "--quiet"]


def test_loss_figure_has_labelled_axes_log_scale_and_a_legend(tiny_cfg, tmp_path):
    rows = [{"step": s, "loss": 1.0 / s, "psnr": 10.0 + s} for s in (2, 4, 6)]
    rows.append({"step": 6, "eval": True, "train_psnr": 17.0, "val_psnr": 15.0})
    fig = training_figure(rows)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and "loss" in ax.get_ylabel() and ax.get_yscale() == "log"
    assert fig.axes[1].get_ylabel() == "PSNR (dB)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["loss", "train PSNR (batch)", "held-out PSNR"]


def test_claims_style_figure_names_each_series():
    fig = line_figure([1, 2, 3], {"GON": [3.0, 2.0, 1.0], "AE": [3.0, 2.5, 2.0]}, "MSE")
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() == "MSE"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["GON", "AE"]


def test_a_run_writes_loss_png_from_matplotlib(tmp_path, capsys):
    code, _, _ = run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--steps", "4",
                         "--log-every", "1", "--out", tmp_path / "run")
    assert code == 0
    png = (tmp_path / "run/loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000  # text, ticks: not a blank canvas


def test_tensorboard_logs_scalars_and_previews(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", *TINY[:-3], "--steps", "4",
                           "--log-every", "2", "--preview-every", "2", "--tensorboard", "--quiet",
                           "--out", tmp_path / "run")
    assert code == 0, err
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run/tensorboard")).Reload()
    assert {"train/loss", "train/psnr", "train/lr"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == [2, 4]
    assert "preview" in acc.Tags()["images"]


def test_tensorboard_without_the_package_names_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--steps", "2",
                           "--tensorboard", "--out", tmp_path / "run")
    assert_input_error(code, err, "tensorboard", 'pip install "inr-gon[tensorboard]"')


def test_steps_0_warns_untrained_and_writes_a_loadable_run(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--steps", "0",
                           "--out", tmp_path / "run")
    assert code == 0 and "warning: --steps 0: the run is written untrained" in err
    assert (tmp_path / "run/config.json").exists()
    code, _, err = run_cli(capsys, "render", tmp_path / "run", "--out", tmp_path / "r", "--quiet")
    assert code == 0, err


def test_batch_larger_than_the_set_is_clamped_with_a_warning(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "builtin:shapes:8", *TINY, "--steps", "1",
                           "--batch-size", "32", "--val-fraction", "0.25", "--out", tmp_path / "run")
    assert code == 0 and "--batch-size 32 is larger than the 6 training items: using 6" in err
    assert json.loads((tmp_path / "run/config.json").read_text())["batch_size"] == 6


def test_one_held_out_item_is_named_and_the_next_command_shown(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "builtin:shapes:4", *TINY[:-1], "--steps", "2",
                             "--val-fraction", "0.25", "--out", tmp_path / "run")
    assert code == 0, err
    assert "held-out PSNR" in out and "(1 item)" in out
    assert f"next: inr-gon render {tmp_path / 'run'} --size 256" in err


def test_resume_with_the_runs_own_values_does_not_warn(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--steps", "2", "--out", run)[0] == 0
    code, _, err = run_cli(capsys, "train", "--resume", *TINY, "--steps", "3", "--out", run)
    assert code == 0 and "ignored" not in err, err
    code, _, err = run_cli(capsys, "train", "--resume", "--size", "16", "--quiet", "--out", run)
    assert code == 0 and "ignored --size" in err


def test_memory_estimate_and_cap_draw_fewer_points():
    cfg = Config.of(height=64, width=64, hidden=256, layers=4)
    plan = memory.plan(cfg, batch=14, pixels=64 * 64)
    assert plan.estimate == memory.step_bytes(14, 4096, 256, 4) and not plan.capped
    capped = memory.plan(cfg.replace(max_memory=256), batch=14, pixels=64 * 64)
    ppp = capped.cfg.train.points_per_signal
    assert 0 < ppp < 4096 and capped.estimate <= 256 * 2**20 and "drawing" in capped.capped


def test_max_memory_caps_a_run_and_says_so(tmp_path, capsys):
    # 7 training items x 1024 pixels x 64 x 1 layer x 4 bytes x FACTOR 4: ~7 MiB, above 1
    code, _, err = run_cli(capsys, "train", "builtin:shapes:8", "--size", "32", "--hidden", "64",
                           "--layers", "1", "--latent-dim", "4", "--device", "cpu", "--quiet",
                           "--preview-every", "0", "--steps", "1", "--max-memory", "1",
                           "--out", tmp_path / "run")
    assert code == 0 and "--max-memory 1 MiB" in err and "points per signal" in err
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert 0 < saved["points_per_signal"] < 32 * 32
