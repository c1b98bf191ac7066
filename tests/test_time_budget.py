"""`train --time-budget`: the clock ends the run, the lr schedule follows the time spent, a
resumed run continues the budget that is left (issue 22 item 1)."""

import json
import math

import pytest
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import UNLIMITED_STEPS, Config, duration_seconds
from inr_gon.training import loop as train_module
from inr_gon.training.train import lr_at, read_metrics, train

TINY = ["--size", "8", "--hidden", "8", "--layers", "1", "--latent-dim", "4", "--device", "cpu",
        "--preview-every", "0", "--log-every", "1"]


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("20m", 1200), ("1h", 3600), ("1h30m", 5400),
                                           ("45", 45), ("0", 0), ("1.5m", 90)])
def test_durations(text, seconds):
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "x", "20q", "-5", "1h x", "m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError):
        duration_seconds(text)


def test_lr_follows_whichever_of_steps_and_time_is_further_along():
    cfg = Config.of(lr=1.0, lr_min_ratio=0.0, steps=100)
    assert lr_at(cfg, 0, 0.0) == 1.0
    assert lr_at(cfg, 0, 0.5) == pytest.approx(0.5)  # half the time spent: half way down the cosine
    assert lr_at(cfg, 50, 0.1) == pytest.approx(0.5)  # half the steps done
    assert lr_at(cfg, 0, 1.0) == pytest.approx(0.0) and lr_at(cfg, 0, 2.0) == pytest.approx(0.0)


def test_warmup_ramps_in_steps_then_joins_the_decay():
    cold, warm = Config.of(lr=1.0, lr_min_ratio=0.0, steps=100), Config.of(lr=1.0, lr_min_ratio=0.0,
                                                                             steps=100, warmup_steps=9)
    assert [lr_at(warm, k) for k in (0, 4)] == pytest.approx([0.1 * lr_at(cold, 0), 0.5 * lr_at(cold, 4)])
    assert [lr_at(warm, k, 0.3) for k in (9, 50)] == [lr_at(cold, k, 0.3) for k in (9, 50)]
    assert lr_at(warm, 4, 0.5) == pytest.approx(0.5 * lr_at(cold, 4, 0.5))  # a budget's decay too


def test_warmup_steps_is_a_cli_option(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "builtin:shapes:8", "--steps", "3", "--warmup-steps", "2",
                           "--out", out, "--quiet", *TINY)
    assert code == 0, err
    saved = json.loads((out / "config.json").read_text())
    assert saved["warmup_steps"] == 2
    cfg = Config.of(lr=saved["lr"], lr_min_ratio=saved["lr_min_ratio"], steps=3, warmup_steps=2)
    lrs = [r["lr"] for r in read_metrics(out) if "lr" in r and not r.get("eval")]
    assert lrs == pytest.approx([lr_at(cfg, k) for k in range(3)])
    assert lrs[0] == pytest.approx(saved["lr"] / 3)


class Clock:
    """time.perf_counter advancing one second per reading: a deterministic wall clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_the_budget_ends_the_run_and_the_lr_decays_with_the_time(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "time", Clock())
    cfg = tiny_cfg.replace(steps=UNLIMITED_STEPS, time_budget="40s", log_every=1, lr_min_ratio=0.1)
    res = train(cfg, tmp_path / "run", quiet=True)
    assert res.out_of_time and not res.interrupted and 0 < res.step < 40
    rows = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    lrs = [r["lr"] for r in rows]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == pytest.approx(cfg.train.lr, rel=0.01)
    assert lrs[-1] < 0.3 * cfg.train.lr  # near lr * ratio when the time is up
    assert res.val_psnr is not None and math.isfinite(res.val_psnr)  # evaluated like any run


def test_steps_end_the_run_first_when_they_come_first(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "time", Clock())
    res = train(tiny_cfg.replace(time_budget="1h"), tmp_path / "run", quiet=True)
    assert res.step == tiny_cfg.train.steps and not res.out_of_time


def test_stop_after_stops_like_ctrl_c_with_the_step_schedule_and_resumes(tiny_cfg, tmp_path,
                                                                         monkeypatch):
    """train(stop_after=s): interrupted after the first step past s seconds (the loop's clock),
    saved, the lr following the steps (not the clock); a resume continues from there."""
    monkeypatch.setattr(train_module, "time", Clock())
    cfg = tiny_cfg.replace(steps=200, log_every=1, lr_min_ratio=0.1)
    res = train(cfg, tmp_path / "run", quiet=True, stop_after=10.0)
    assert res.interrupted and not res.out_of_time and 0 < res.step < 20
    lr = [r["lr"] for r in read_metrics(tmp_path / "run") if "loss" in r][-1]
    assert lr == pytest.approx(lr_at(cfg, res.step - 1, 0.0))  # the step schedule, far from its end
    more = train(cfg, tmp_path / "run", resume=True, quiet=True, stop_after=30.0)
    assert more.interrupted and res.step < more.step < 40


def test_cli_budget_alone_lifts_the_step_limit_and_says_why_it_stopped(tmp_path, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--time-budget", "2s",
                             "--out", run)
    assert code == 0, err
    assert "(--time-budget 2s reached)" in out and "held-out PSNR" in out
    saved = json.loads((run / "config.json").read_text())
    assert saved["steps"] == UNLIMITED_STEPS and saved["time_budget"] == "2s"
    step = int(out.split(": step ")[1].split()[0])
    assert step > 0
    # the budget is spent: resuming trains no further; a larger one continues where it stopped
    code, out, err = run_cli(capsys, "train", "--resume", "--out", run, "--quiet")
    assert code == 0 and f"step {step} " in out, out + err
    code, out, err = run_cli(capsys, "train", "--resume", "--time-budget", "3s", "--out", run, "--quiet")
    assert code == 0 and int(out.split(": step ")[1].split()[0]) > step, out + err
    seconds = [r["seconds"] for r in read_metrics(run) if "loss" in r]
    assert seconds == sorted(seconds) and seconds[-1] <= 3.5  # one clock across the resume


def test_a_bad_budget_is_one_line_and_exit_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--time-budget", "5x",
                           "--out", tmp_path / "run")
    assert_input_error(code, err, "time_budget")
    assert not (tmp_path / "run").exists()
