"""Issue 15 point 1: progress that works everywhere. A run whose output is a pipe prints plain
periodic lines (step, loss, PSNR, steps/s, ETA); a stopped run says where it stopped and what
was saved; rate and ETA come from wall time."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import run_cli

from inr_gon.datasets import Sampling, load_shapes
from inr_gon.progress import Progress, Rate, clock
from inr_gon.training.train import Loop

TINY = ["builtin:shapes:16", "--size", "8", "--hidden", "8", "--layers", "1", "--latent-dim", "4",
        "--device", "cpu", "--preview-every", "0"]
LINE = re.compile(r"^train (\d+)/(\d+) steps  loss (\S+)  psnr (\S+)  (\S+) steps/s  ETA (\S+)")


def test_a_piped_run_prints_plain_progress_lines(tmp_path):
    env = {**os.environ, "INR_GON_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONSAFEPATH": "1"}
    p = subprocess.run([sys.executable, "-m", "inr_gon", "train", *TINY, "--steps", "12",
                        "--log-every", "4", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [m for m in map(LINE.match, p.stderr.splitlines()) if m]
    assert len(lines) >= 10, p.stderr  # one per step at 0 s, the first before any step
    first, last = lines[0], lines[-1]
    assert first.group(1) == "0" and first.group(3) == "-" and first.group(6) == "-"  # not `0`
    assert "a step needs ~" in first.string  # the memory estimate, before training
    assert last.group(1) == last.group(2) == "12"
    assert float(last.group(3)) > 0 and float(last.group(4)) > 0 and float(last.group(5)) > 0
    assert re.fullmatch(r"\d+:\d\d:\d\d", last.group(6))
    assert "next: inr-gon render" in p.stderr



def test_piped_lines_show_the_current_loss_and_psnr_between_log_steps(tmp_path):
    """Not `loss -  psnr -` until the first log step: each line carries the last step's figures."""
    env = {**os.environ, "INR_GON_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONSAFEPATH": "1"}
    p = subprocess.run([sys.executable, "-m", "inr_gon", "train", *TINY, "--steps", "5",
                        "--log-every", "1000", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    during = [m for m in map(LINE.match, p.stderr.splitlines()) if m and 0 < int(m.group(1)) < 5]
    assert len(during) >= 4, p.stderr
    assert all(float(m.group(3)) > 0 and float(m.group(4)) > 0 for m in during), p.stderr

def test_quiet_prints_no_progress(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", *TINY, "--steps", "2", "--quiet",
                             "--out", tmp_path / "run")
    assert code == 0 and "steps/s" not in err and "steps/s" not in out


def test_a_stopped_run_says_where_and_what_was_saved(tmp_path, capsys, monkeypatch):
    real = Loop.train_step

    def stop_after_three(self, step):  # as Ctrl-C or SIGTERM would: finish the step, then stop
        out = real(self, step)
        self.stop_requested = step == 2
        return out

    monkeypatch.setattr(Loop, "train_step", stop_after_three)
    code, out, err = run_cli(capsys, "train", *TINY, "--steps", "50", "--out", tmp_path / "run")
    assert code == 130
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("stopped at step 3 of 50: checkpoint saved in ")
    assert f"--resume --out {tmp_path / 'run'}" in lines[0]


def test_rate_is_measured_against_wall_time():
    r = Rate(0, window=30.0)
    r.add(10, now=r.samples[0][0] + 5.0)  # 10 steps in 5 s
    assert r.per_second(now=r.samples[0][0] + 5.0) == pytest.approx(2.0)
    # a pause (a preview, a checkpoint) with no steps lowers the rate as time passes
    assert r.per_second(now=r.samples[0][0] + 10.0) == pytest.approx(1.0)


def test_fields_and_eta_show_a_dash_until_known(capsys):
    p = Progress("job", 100, fields=("loss",))
    assert p.text().startswith("loss -") and p.text().endswith("ETA -")
    assert clock(None) == "-" and clock(3725) == "1:02:05"


def test_shape_sampling_prints_progress_when_piped(capsys, monkeypatch):
    monkeypatch.setenv("INR_GON_PROGRESS_SECONDS", "0")
    load_shapes("builtin:shapes3d:2", Sampling(count=256))
    err = capsys.readouterr().err
    assert re.search(r"^generating shapes 2/2 shapes  \S+ shapes/s  ETA 0:00:00", err, re.M), err
    load_shapes("builtin:shapes3d:2", Sampling(count=256), quiet=True)
    assert capsys.readouterr().err == ""


def test_quick_work_prints_nothing_when_piped(capsys):
    with Progress("job", 3) as p:  # the default 10 s between lines
        p.update(3)
    assert capsys.readouterr().err == ""


def test_sigterm_stops_a_piped_run_which_says_where(tmp_path):
    """`kill` (SIGTERM), as CI and nohup'd jobs are stopped: finish the step, save, one line."""
    env = {**os.environ, "INR_GON_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONSAFEPATH": "1"}
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "inr_gon", "train", *TINY, "--steps", "100000",
                          "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    for line in p.stderr:  # wait until steps are being taken
        m = LINE.match(line)
        if m and int(m.group(1)) >= 2:
            break
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 130
    step = int(re.fullmatch(r"stopped at step (\d+) of 100000: checkpoint saved in .*\n", out).group(1))
    assert json.loads((run / "train_state.json").read_text())["step"] == step >= 2


def test_a_piped_render_reports_its_images(tmp_path):
    env = {**os.environ, "INR_GON_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1",
           "PYTHONSAFEPATH": "1"}
    train = subprocess.run([sys.executable, "-m", "inr_gon", "train", *TINY, "--steps", "2",
                            "--quiet", "--out", str(tmp_path / "run")], capture_output=True,
                           text=True, env=env, timeout=300)
    assert train.returncode == 0, train.stderr
    p = subprocess.run([sys.executable, "-m", "inr_gon", "render", str(tmp_path / "run"), "-n", "3",
                        "--size", "16"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert re.search(r"render 3/3 images", p.stderr), p.stderr


def test_eta_is_the_earlier_of_the_steps_and_the_time_budget():
    """A --time-budget run ends at its deadline though --steps would take far longer (the ETA
    once read 19:57:41 for a 40-minute budget); steps that end first still give the ETA."""
    p = Progress("train", 100_000, fields=("loss",), quiet=True)
    t0 = p.rate.samples[0][0]
    p.deadline = t0 + 2400.0  # 40 minutes from the start
    p.completed = 10
    p.rate.add(10, now=t0 + 10.0)  # 1 step/s: 99,990 s of steps left
    assert p.text(now=t0 + 10.0).endswith("ETA 0:39:50")
    p.total = 20  # 10 steps left at 1 step/s: before the deadline
    assert p.text(now=t0 + 10.0).endswith("ETA 0:00:10")
    budget_only = Progress("train", None, quiet=True, deadline=time.perf_counter() + 90.0)
    assert budget_only.text().endswith(("ETA 0:01:30", "ETA 0:01:29"))
