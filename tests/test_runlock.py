"""One writer per run folder (inr_gon/run/lock.py): two `train`s started together, a `--resume`
racing an `export`, readers while a run trains, a SIGKILLed holder. Every wait is on an explicit
signal (a child prints LOCKED or READY and waits for a line on stdin), never on a sleep."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from cli_helpers import one_error_line, run_cli
from figures import record

from inr_gon.config import Config
from inr_gon.io import read_jsonl
from inr_gon.models.factory import build_model
from inr_gon.run import load_checkpoint, load_config, load_run
from inr_gon.run import lock as runlock
from inr_gon.training.train import train

FLAGS = ["--size", "8", "--hidden", "16", "--layers", "2", "--latent-dim", "4", "--batch-size", "4",
         "--checkpoint-every", "2", "--log-every", "1", "--preview-every", "0", "--val-fraction",
         "0.25", "--device", "cpu", "--quiet"]
TINY = Config.of(data="builtin:shapes:16", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                 batch_size=4, steps=4, checkpoint_every=2, log_every=1, preview_every=0,
                 val_fraction=0.25, device="cpu")
# A CLI child that stops where the test wants it: PAUSE "lock" once it holds the run's lock,
# PAUSE "start" before running at all; either prints its cue and waits for a line on stdin.
CHILD = """
import sys
from inr_gon.run import lock as runlock
from inr_gon.cli.app import main
where = sys.argv[1]
real = runlock._acquire
def acquire(run_dir, create):
    fd = real(run_dir, create)
    print("LOCKED", flush=True)
    sys.stdin.readline()
    return fd
if where == "lock":
    runlock._acquire = acquire
else:
    print("READY", flush=True)
    sys.stdin.readline()
main(sys.argv[2:])
"""


class Child:
    def __init__(self, where: str, *argv, cwd: Path) -> None:
        env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, where, *map(str, argv)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)

    def wait_for(self, cue: str) -> None:
        for line in self.proc.stdout:  # ends (and fails below) if the child exits instead
            if line.strip() == cue:
                return
        raise AssertionError(f"child ended before {cue}: {self.proc.stderr.read()}")

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=240)
        return self.proc.returncode, err


def loss_steps(run_dir: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]


def checkpoint_step(run_dir: Path) -> int:
    model = build_model(load_config(run_dir))
    return load_checkpoint(run_dir, model, torch.optim.Adam(model.parameters()))[0]


def test_two_trains_started_together_leave_one_run(tmp_path):
    """The issue's two commands, released at the same instant: whichever wins, the other exits 2
    and the folder holds one run (the winner's seed, each step logged once)."""
    kids = {seed: Child("start", "train", "builtin:shapes:16", *FLAGS, "--steps", "6", "--seed",
                        seed, "--out", "run", cwd=tmp_path) for seed in (0, 1)}
    for k in kids.values():
        k.wait_for("READY")
    for k in kids.values():
        k.go()
    codes = {seed: k.finish() for seed, k in kids.items()}
    assert sorted(c for c, _ in codes.values()) == [0, 2], codes
    winner = next(seed for seed, (c, _) in codes.items() if c == 0)
    loser_err = codes[1 - winner][1]
    line = one_error_line(loser_err)
    assert (f"process {kids[winner].proc.pid} (" in line and "is in use" in line) \
        or "already holds a run" in line, line  # the winner may have finished first
    run = tmp_path / "run"
    assert load_config(run).train.seed == winner and loss_steps(run) == list(range(1, 7))
    assert checkpoint_step(run) == 6 and load_run(run)
    record("lock", case="two trains started together", exits=sorted(c for c, _ in codes.values()),
           message=line)


def test_a_second_train_names_the_holder_and_changes_nothing(tmp_path, capsys):
    holder = Child("lock", "train", "builtin:shapes:16", *FLAGS, "--steps", "4", "--out", "run",
                   cwd=tmp_path)
    holder.wait_for("LOCKED")
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", *FLAGS, "--steps", "4", "--seed",
                           "1", "--out", tmp_path / "run")
    line = one_error_line(err)
    assert code == 2 and f"process {holder.proc.pid} (" in line and "train builtin:shapes:16" in line
    holder.go()
    assert holder.finish()[0] == 0
    run = tmp_path / "run"
    assert load_config(run).train.seed == 0 and loss_steps(run) == [1, 2, 3, 4]
    record("lock", case="train into a folder another train holds", exits=[0, code], message=line)


@pytest.fixture
def trained(tmp_path):
    train(TINY, tmp_path / "run", quiet=True)
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    return tmp_path / "run"


def test_resume_racing_export_and_readers_meanwhile(trained, tmp_path, capsys):
    """While `--resume` holds the run: exporting into it exits 2 naming the trainer; readers
    (render, eval, export and fit to other paths) work. Then the other way round."""
    resume = Child("lock", "train", "x", "--resume", "--steps", "6", "--out", trained, "--quiet",
                   cwd=tmp_path)
    resume.wait_for("LOCKED")
    writers = [["export", trained, "--quiet"],
               ["fit", trained, tmp_path / "a.png", "--out", trained / "z.safetensors", "--quiet"],
               ["render", trained, "-n", "1", "--out", trained, "--quiet"]]
    for argv in writers:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and f"process {resume.proc.pid} (" in one_error_line(err), (argv, err)
    readers = [["render", trained, "-n", "2", "--quiet"],  # RUN/renders: an output, not the run
               ["eval", trained, "builtin:shapes:16", "--json", "--quiet"],
               ["export", trained, "--out", tmp_path / "elsewhere" / "d.onnx", "--quiet"],
               ["fit", trained, tmp_path / "a.png", "--out", tmp_path / "z.safetensors", "--quiet"]]
    for argv in readers:
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, (argv, err)
    resume.go()
    assert resume.finish()[0] == 0 and checkpoint_step(trained) == 6
    assert not (trained / "decoder.onnx").exists() and not (trained / "z.safetensors").exists()

    export = Child("lock", "export", trained, "--quiet", cwd=tmp_path)
    export.wait_for("LOCKED")
    code, _, err = run_cli(capsys, "train", "x", "--resume", "--steps", "8", "--out", trained)
    line = one_error_line(err)
    assert code == 2 and f"process {export.proc.pid} (" in line and "export" in line
    export.go()
    assert export.finish()[0] == 0 and (trained / "decoder.onnx").is_file()
    assert checkpoint_step(trained) == 6 and loss_steps(trained) == list(range(1, 7))
    record("lock", case="--resume racing export", writers_refused=len(writers) + 1,
           readers_ok=len(readers), message=line)


def test_a_sigkilled_holder_leaves_no_stale_lock(trained, tmp_path, capsys):
    holder = Child("lock", "train", "x", "--resume", "--steps", "6", "--out", trained, cwd=tmp_path)
    holder.wait_for("LOCKED")
    os.kill(holder.proc.pid, signal.SIGKILL)
    holder.finish()
    assert json.loads((trained / runlock.LOCK_FILE).read_text())["pid"] == holder.proc.pid
    code, _, err = run_cli(capsys, "train", "x", "--resume", "--steps", "6", "--out", trained)
    assert code == 0, err
    assert checkpoint_step(trained) == 6
    record("lock", case="holder SIGKILLed, then --resume", exits=[code])


def test_readers_see_a_whole_checkpoint_while_one_is_written(trained, tmp_path, capsys):
    """Paused between the two files of a checkpoint (train_state renamed, model.safetensors not
    yet): config.json, written once when the run was made, and the previous model still load."""
    config = (trained / "config.json").stat()
    before = load_run(trained).model.state_dict()
    paused = """
import os, sys
real = os.replace
def replace(src, dst):
    if os.path.basename(dst) == "model.safetensors":
        print("MID", flush=True)
        sys.stdin.readline()
    real(src, dst)
os.replace = replace
from inr_gon.cli.app import main
main(sys.argv[1:])
"""
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
    child = Child.__new__(Child)
    child.proc = subprocess.Popen([sys.executable, "-c", paused, "train", "x", "--resume",
                                   "--steps", "6", "--out", str(trained), "--quiet"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
    child.wait_for("MID")
    assert checkpoint_step(trained) == 6  # the new train_state is in place ...
    now = load_run(trained).model.state_dict()  # ... the model is still the whole old one
    assert all(torch.equal(before[k], now[k]) for k in before)
    assert run_cli(capsys, "render", trained, "-n", "1", "--quiet")[0] == 0
    child.go()
    assert child.finish()[0] == 0
    after = (trained / "config.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (config.st_ino, config.st_mtime_ns)
    record("lock", case="reader mid-checkpoint", readers_ok=2)


def test_the_lock_is_reentrant_and_dies_with_the_block(tmp_path):
    run = tmp_path / "new" / "run"
    other = None
    with runlock.hold(run, create=True):
        with runlock.hold(run):  # the same process again (demo -> train)
            pass
        other = os.open(run / runlock.LOCK_FILE, os.O_RDWR)
        with pytest.raises(BlockingIOError):  # another open file: refused while held
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released with the block
    os.close(other)
    with pytest.raises(Exception, match="no such run folder"):
        with runlock.hold(tmp_path / "missing"):
            pass
