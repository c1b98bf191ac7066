"""Running out of memory or disk: one line, the right exit code, the last checkpoint kept.

Memory: injected (each kind of exception torch, numpy and Python raise) and real (RLIMIT_AS in a
subprocess). Disk: a real full file system (a size-limited tmpfs, mounted where the test runs
as root) and a real file size limit (RLIMIT_FSIZE in a subprocess, anywhere)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import one_error_line, run_cli
from figures import record

import inr_gon.training.loop
from inr_gon.config import Config
from inr_gon.io import read_jsonl, write_png
from inr_gon.models.factory import build_model
from inr_gon.oom import OutOfMemory
from inr_gon.run import STATE_FILE, load_checkpoint, load_config, load_run
from inr_gon.training.train import Loop, train

TINY = Config.of(data="builtin:shapes:16", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                 batch_size=4, steps=8, checkpoint_every=2, log_every=1, preview_every=0,
                 val_fraction=0.25, device="cpu")
FLAGS = ["builtin:shapes:16", "--size", "8", "--hidden", "16", "--layers", "2", "--latent-dim",
         "4", "--batch-size", "4", "--steps", "8", "--checkpoint-every", "2", "--preview-every",
         "0", "--val-fraction", "0.25", "--device", "cpu", "--quiet"]
OOM = {
    "cuda": lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 "
                                           "has a total capacity of 79.1 GiB ..."),
    "cpu": lambda: RuntimeError("[enforce fail at alloc_cpu.cpp:118] data. DefaultCPUAllocator: "
                                "can't allocate memory: you tried to allocate 1073741824 bytes. "
                                "Error code 12 (Cannot allocate memory)"),
    "python": lambda: MemoryError(),
}
WHAT = {"cuda": "GPU memory (2.00 GiB asked for)", "cpu": "CPU memory (1.00 GiB asked for)",
        "python": "CPU memory"}


def checkpoint_step(run_dir: Path) -> int:
    model = build_model(load_config(run_dir))
    return load_checkpoint(run_dir, model, torch.optim.Adam(model.parameters()))[0]


def fail_at(monkeypatch, step: int, error) -> None:
    real = Loop.train_step

    def step_fn(self, s):
        if s == step:
            raise error()
        return real(self, s)

    monkeypatch.setattr(Loop, "train_step", step_fn)


# ---- out of memory ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(OOM))
def test_out_of_memory_in_a_training_step_is_one_line(kind, tmp_path, capsys, monkeypatch):
    fail_at(monkeypatch, 4, OOM[kind])  # the 5th step; the checkpoint of step 4 is on disk
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *FLAGS, "--out", run)
    line = one_error_line(err)
    assert code == 1, err
    for words in (f"training ran out of {WHAT[kind]} at step 5", "checkpoint is step 4",
                  str(run / STATE_FILE), "--batch-size (now 4)", "--points-per-signal"):
        assert words in line, line
    monkeypatch.undo()
    assert checkpoint_step(run) == 4
    assert run_cli(capsys, "train", "x", "--resume", "--out", run, "--quiet")[0] == 0
    assert checkpoint_step(run) == 8
    record("oom", case=f"train step ({kind}, injected)", exit=code, message=line)


def test_out_of_memory_in_an_sdf_run_names_sdf_points(tmp_path, capsys, monkeypatch, tiny_sdf_cfg):
    fail_at(monkeypatch, 0, OOM["cuda"])
    with pytest.raises(OutOfMemory, match=r"step 0 in .*--sdf-points \(now 64\)"):
        train(tiny_sdf_cfg, tmp_path / "run", quiet=True)
    record("oom", case="train step, SDF run (injected)", exit=1)


@pytest.fixture
def image_run(tmp_path):
    train(TINY.replace(steps=2), tmp_path / "run", quiet=True)
    return tmp_path / "run"


def test_out_of_memory_while_rendering_is_one_line(image_run, tmp_path, capsys, monkeypatch):
    def decoder(*args, **kwargs):
        def decode(*a, **k):
            raise OOM["cpu"]()
        return decode

    monkeypatch.setattr("inr_gon.cli.render._decoder", decoder)
    code, _, err = run_cli(capsys, "render", image_run, "--size", "64x32", "--out", tmp_path / "r",
                           "--quiet")  # no "rendering 8 of 12 items" note: only the error line
    line = one_error_line(err)
    assert code == 1 and "render ran out of CPU memory" in line and "at 64x32" in line  # WxH
    assert "--max-memory (now 512 MiB)" in line
    record("oom", case="render (injected)", exit=code, message=line)


def test_out_of_memory_while_meshing_is_one_line(tmp_path, capsys, monkeypatch, tiny_sdf_cfg):
    train(tiny_sdf_cfg, tmp_path / "run", quiet=True)

    def mesh_run(*args, **kwargs):
        raise OOM["cuda"]()

    monkeypatch.setattr("inr_gon.cli.mesh.mesh_run", mesh_run)  # the command holds it
    code, _, err = run_cli(capsys, "mesh", tmp_path / "run", "-r", "16", "--out", tmp_path / "m")
    line = one_error_line(err)
    assert code == 1 and "mesh ran out of GPU memory" in line and "--max-memory" in line
    record("oom", case="mesh (injected)", exit=code, message=line)



@pytest.mark.parametrize("command,holder,words", [
    ("fit", "inr_gon.cli.fit.fit_images", ("fit ran out of CPU memory", "INPUTS", "(now 1)")),
    ("eval", "inr_gon.cli.eval.run_eval", ("eval ran out of CPU memory", "--limit")),
    ("sample", "inr_gon.cli.sample.sample_latents", ("sample ran out of CPU memory", "-n (now 16)")),
    ("interpolate", "inr_gon.cli.interpolate.endpoint_latents",
     ("interpolate ran out of CPU memory", "--frames (now 24)")),
])
def test_out_of_memory_in_the_other_commands_is_one_line(command, holder, words, image_run,
                                                         tmp_path, capsys, monkeypatch):
    """fit, eval, sample and interpolate: one line naming the flag that lowers memory, exit 1."""
    def fails(*args, **kwargs):
        raise OOM["cpu"]()

    monkeypatch.setattr(holder, fails)
    png = tmp_path / "a.png"
    write_png(png, np.zeros((8, 8, 3), np.float32))  # an input the commands read
    argv = {"fit": [png], "eval": ["builtin:shapes:4"], "sample": ["--out", tmp_path / "s"],
            "interpolate": [png, png, "--out", tmp_path / "a.gif"]}[command]
    code, _, err = run_cli(capsys, command, image_run, *argv, "--quiet")
    line = one_error_line(err)
    assert code == 1, err
    for w in words:
        assert w in line, line
    record("oom", case=f"{command} (injected)", exit=code, message=line)

# A child with a real address-space limit: what it has mapped after importing torch, plus MiB.
LIMITED = """
import resource, sys
import torch
torch.set_num_threads(1)
from inr_gon.cli.app import main
vm = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x.startswith("VmSize:"))
limit = vm + int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
main(sys.argv[2:])
"""


def limited(cwd: Path, mib: int, *argv) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", LIMITED, str(mib), *map(str, argv)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_a_real_memory_limit_in_training_and_rendering(image_run, tmp_path):
    """RLIMIT_AS 400 MiB above what torch maps at import: a 64x64 batch of 64 through 512-wide
    layers (512 MiB per activation) and a 4096x4096 render in 4 GiB chunks cannot fit."""
    # 80 items leave 72 to train: the batch of 64 is not clamped to the set
    p = limited(tmp_path, 400, "train", "builtin:shapes:80", "--size", "64", "--batch-size", "64",
                "--hidden", "512", "--layers", "2", "--steps", "3", "--device", "cpu", "--out",
                "big", "--quiet")
    line = one_error_line(p.stderr)
    assert p.returncode == 1 and "training ran out of CPU memory" in line, p.stderr
    assert "the last good checkpoint is step 0" in line and checkpoint_step(tmp_path / "big") == 0
    r = limited(tmp_path, 400, "render", image_run, "-n", "1", "--size", "4096", "--max-memory",
                "4096", "--device", "cpu", "--out", "r", "--quiet")
    assert r.returncode == 1 and "render ran out of CPU memory" in one_error_line(r.stderr), r.stderr
    record("oom", case="train step (RLIMIT_AS, real)", exit=p.returncode, message=line)
    record("oom", case="render (RLIMIT_AS, real)", exit=r.returncode, message=r.stderr.strip())


# ---- a real full disk -------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: a real file system that fills up. Needs root (CI runs as root)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (the RLIMIT_FSIZE test runs anyway)")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"mount -t tmpfs is refused here ({p.stderr.strip()}); RLIMIT_FSIZE runs anyway")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


BIG = TINY.replace(hidden=96, steps=4)  # train_state.safetensors ~ 230 KB: bigger than the room left


def test_a_real_full_disk_keeps_the_checkpoint(small_disk, capsys):
    run = small_disk / "run"
    train(BIG, run, quiet=True)
    state = (run / STATE_FILE).stat().st_size
    free = os.statvfs(small_disk)
    room = state // 3  # room for log lines and a few small files, not for a checkpoint
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - room))
    code, _, err = run_cli(capsys, "train", "x", "--resume", "--steps", "8", "--out", run, "--quiet")
    line = one_error_line(err)
    assert code == 2 and os.strerror(errno.ENOSPC) in line and STATE_FILE in line, err
    assert "intact" in line and checkpoint_step(run) == 4 and load_run(run)
    assert not list(run.glob(".*.tmp"))
    filler.unlink()
    assert run_cli(capsys, "train", "x", "--resume", "--steps", "8", "--out", run, "--quiet")[0] == 0
    assert checkpoint_step(run) == 8
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl") if "loss" in r]
    assert steps == list(range(1, 9))
    record("disk_full", hit="real tmpfs (2 MiB)", exit_code=code, message=line, checkpoint_kept=4)


def test_a_real_file_size_limit_keeps_the_checkpoint(tmp_path, capsys):
    """RLIMIT_FSIZE in a subprocess (SIGXFSZ ignored, so writes fail with EFBIG): works as any user."""
    run = tmp_path / "run"
    train(BIG, run, quiet=True)
    limit = (run / STATE_FILE).stat().st_size // 2
    script = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
              f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
              "from inr_gon.cli.app import main; main(sys.argv[1:])")
    env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", script, "train", "x", "--resume", "--steps", "8",
                        "--out", str(run), "--quiet"], env=env, capture_output=True, text=True,
                       timeout=300)
    line = one_error_line(p.stderr)
    assert p.returncode == 2 and os.strerror(errno.EFBIG) in line and STATE_FILE in line, p.stderr
    assert checkpoint_step(run) == 4 and not list(run.glob(".*.tmp"))
    assert run_cli(capsys, "train", "x", "--resume", "--steps", "8", "--out", run, "--quiet")[0] == 0
    record("disk_full", hit="real RLIMIT_FSIZE", exit_code=p.returncode, message=line,
           checkpoint_kept=4)


# ---- metrics.jsonl is fsynced at every checkpoint ----------------------------------------------

def test_metrics_are_fsynced_at_each_checkpoint(tmp_path, monkeypatch):
    synced = []
    real = inr_gon.training.loop.sync_file

    def spy(path):
        real(path)
        synced.append(max((r["step"] for r in read_jsonl(path) if "loss" in r), default=0))

    monkeypatch.setattr(inr_gon.training.loop, "sync_file", spy)
    train(TINY, tmp_path / "run", quiet=True)
    # each checkpoint's log lines reach the disk with it; the final evaluation's at the end
    assert synced == [2, 4, 6, 8, 8]
