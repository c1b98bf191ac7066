"""Nothing lost: SIGKILL at random moments (mid-checkpoint included), NaN/inf losses and a full
disk leave a run folder that loads and resumes to the weights of an uninterrupted run."""

from __future__ import annotations

import errno
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from cli_helpers import one_error_line, run_cli
from figures import record

import inr_gon.io
from inr_gon.config import Config
from inr_gon.io import append_line, atomic_write, load_tensors, read_json, read_jsonl
from inr_gon.models.factory import build_model
from inr_gon.run import is_run, load_checkpoint, load_config, load_run
from inr_gon.training.train import Loop, train

# ---- SIGKILL at random moments --------------------------------------------------------------

KILL_STEPS = 120  # more than 12 kills can use up, so every kill hits a live run
KILL_CFG = Config.of(data="builtin:shapes:48", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                     batch_size=4, steps=KILL_STEPS, checkpoint_every=2, log_every=1, preview_every=8,
                     lr=1e-3, seed=5, device="cpu")
KILL_FLAGS = ["builtin:shapes:48", "--size", "8", "--hidden", "16", "--layers", "2", "--latent-dim",
              "4", "--batch-size", "4", "--steps", str(KILL_STEPS), "--checkpoint-every", "2",
              "--log-every", "1", "--preview-every", "8", "--lr", "1e-3", "--seed", "5",
              "--device", "cpu", "--quiet"]
WRITE_DELAY = 0.08  # seconds each .safetensors write waits before its rename
# `inr-gon train` with every atomic rename announced on stdout; a .safetensors rename waits a
# moment first, so a kill can land while a checkpoint is half-way written. Test-only shim.
WRAPPER = """
import os, sys, time
delay = float(sys.argv[1])
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    name = os.path.basename(os.fspath(dst))
    print("BEGIN", name, flush=True)
    if name.endswith(".safetensors"):
        time.sleep(delay)
    real_replace(src, dst, *args, **kwargs)
    print("END", name, flush=True)
os.replace = replace
from inr_gon.cli.app import main
main(sys.argv[2:])
"""


class Trainer:
    """One `train` subprocess and the write markers it prints."""

    def __init__(self, run_dir: Path, resume: bool) -> None:
        args = [sys.executable, "-c", WRAPPER, str(WRITE_DELAY), "train", *KILL_FLAGS,
                "--out", str(run_dir), *(["--resume"] if resume else [])]
        env = {**os.environ, "PYTHONSAFEPATH": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=run_dir.parent)
        self.lines: queue.Queue = queue.Queue()
        self.markers: list[tuple[str, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _take(self, line: str) -> None:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("BEGIN", "END"):
            self.markers.append((parts[0], parts[1]))

    def wait_for(self, event: tuple[str, str], count: int, timeout: float = 90.0) -> bool:
        """Until `event` has been seen `count` times (True) or the process ended (False)."""
        deadline = time.monotonic() + timeout
        while self.markers.count(event) < count:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                return False
            self._take(line)
        return True

    def kill(self) -> bool:
        """SIGKILL if still running; True if the kill hit a live process."""
        alive = self.proc.poll() is None
        if alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.finish(30)
        return alive

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=30)
        while not self.lines.empty():
            line = self.lines.get()
            if line is not None:
                self._take(line)
        self.stderr = self.proc.stderr.read()
        return code

    def killed_mid_write(self) -> str | None:
        """The .safetensors file whose write was begun but not finished, if any."""
        open_writes = set()
        for kind, name in self.markers:
            if name.endswith(".safetensors"):
                (open_writes.add if kind == "BEGIN" else open_writes.discard)(name)
        return next(iter(open_writes), None)


def check_folder(run_dir: Path) -> dict:
    """Load every file of the folder the way its reader does; count the ones that fail."""
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    temps = [p for p in files if p.name.endswith(".tmp")]
    damaged = []
    cfg = load_config(run_dir) if is_run(run_dir) else None
    for path in sorted(set(files) - set(temps)):
        try:
            if path.name == "model.safetensors" and cfg is not None:
                load_run(run_dir)
            elif path.name == "train_state.safetensors" and cfg is not None:
                model = build_model(cfg)
                load_checkpoint(run_dir, model, torch.optim.Adam(model.parameters()))
            elif path.suffix == ".safetensors":
                load_tensors(path)
            elif path.suffix == ".json":
                read_json(path)
            elif path.suffix == ".jsonl":
                lines = path.read_text().splitlines()
                assert len(read_jsonl(path)) == len(lines), "a torn line"
            elif path.suffix == ".png":
                iio.imread(path)
        except Exception as e:  # noqa: BLE001 - any failure to load counts as a lost file
            damaged.append(f"{path.name}: {e}")
    return {"files": len(files) - len(temps), "temps": len(temps), "damaged": damaged}


def loss_rows(run_dir: Path, upto: int) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r and r["step"] <= upto]


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    reference = train(KILL_CFG, tmp_path / "reference", quiet=True)
    assert reference.step == KILL_STEPS
    run_dir, rng = tmp_path / "killed", random.Random(20240601)
    modes = ["mid-state-write", "between-files", "in-training", "any-moment"] * 3
    kills, half_written, checked, lost, steps, kept = 0, [], 0, [], [], []
    for mode in modes:
        t = Trainer(run_dir, resume=is_run(run_dir))
        if mode == "mid-state-write":
            t.wait_for(("BEGIN", "train_state.safetensors"), rng.randint(1, 3))
        elif mode == "between-files":
            t.wait_for(("BEGIN", "model.safetensors"), rng.randint(1, 3))
        elif mode == "in-training":
            t.wait_for(("END", "train_state.safetensors"), 1)
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            time.sleep(rng.uniform(0.2, 2.5))
        assert t.kill(), f"the run finished before the {mode} kill: raise KILL_STEPS"
        kills += 1
        half_written.append(t.killed_mid_write())
        state = check_folder(run_dir)
        checked += state["files"]
        lost += state["damaged"]
        if is_run(run_dir):  # a run folder loads, and its checkpoint is never older than before
            load_run(run_dir)
            model = build_model(load_config(run_dir))
            step, _ = load_checkpoint(run_dir, model, torch.optim.Adam(model.parameters()))
            assert step >= max(steps, default=0)
            steps.append(step)
            kept.append((step, loss_rows(run_dir, step)))
        else:  # killed before config.json: not a run yet, and a fresh `train` reuses the folder
            assert not (run_dir / "config.json").exists()
    final = Trainer(run_dir, resume=is_run(run_dir))
    assert final.finish(180) == 0, final.stderr
    assert lost == []
    # --resume continued from the last checkpoint each time: the logged steps are 1..N once
    # each, and the records up to each checkpoint are the very ones written before the kill.
    assert [r["step"] for r in loss_rows(run_dir, KILL_STEPS)] == list(range(1, KILL_STEPS + 1))
    for step, rows in kept:
        assert loss_rows(run_dir, step) == rows
    assert not list(run_dir.rglob("*.tmp"))  # resume removes what interrupted writes left
    ref, got = load_run(tmp_path / "reference").model.state_dict(), load_run(run_dir).model.state_dict()
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    mid_writes = [name for name in half_written if name]
    assert kills >= 10 and len(mid_writes) >= 2, (kills, half_written)
    record("kill", kills=kills, killed_mid_checkpoint_write=len(mid_writes),
           half_written_files=sorted(set(mid_writes)), steps=KILL_STEPS,
           checkpoint_steps_after_kills=steps, files_checked_after_kills=checked,
           files_lost=len(lost), final_weights_equal_uninterrupted=True)


# ---- NaN / inf, full disk ------------------------------------------------------------------

TINY = Config.of(data="builtin:shapes:24", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                 steps=8, batch_size=4, lr=1e-3, log_every=1, preview_every=0, checkpoint_every=2,
                 val_fraction=0.25, device="cpu")
TINY_FLAGS = ["builtin:shapes:24", "--size", "8", "--hidden", "16", "--layers", "2",
              "--latent-dim", "4", "--steps", "8", "--batch-size", "4", "--lr", "1e-3",
              "--preview-every", "0", "--checkpoint-every", "2", "--val-fraction", "0.25",
              "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(TINY, out, quiet=True)
    return load_run(out).model.state_dict()


def checkpoint_step(run_dir: Path) -> int:
    run = load_run(run_dir)
    assert all(torch.isfinite(v).all() for v in run.model.state_dict().values())
    model = build_model(run.cfg)
    return load_checkpoint(run_dir, model, torch.optim.Adam(model.parameters()))[0]


def resume_matches(capsys, run_dir: Path, reference: dict) -> None:
    code, _, err = run_cli(capsys, "train", "x", "--resume", "--out", run_dir, "--quiet")
    assert code == 0, err
    weights = load_run(run_dir).model.state_dict()
    for k in reference:
        assert torch.equal(reference[k], weights[k]), k


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_loss_stops_with_one_line_and_resumes(tmp_path, capsys, monkeypatch, reference, bad):
    real = Loop.train_step

    def diverging(self, step):  # the 5th step reports a non-finite loss
        out = real(self, step)
        if step == 4:
            out["loss"] = torch.tensor(bad)
        return out

    monkeypatch.setattr(Loop, "train_step", diverging)
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, "--out", tmp_path / "run")
    line = one_error_line(err)
    assert code == 1 and f"loss became {bad} at step 5" in line and "(step 4) is kept" in line
    assert checkpoint_step(tmp_path / "run") == 4
    monkeypatch.setattr(Loop, "train_step", real)
    resume_matches(capsys, tmp_path / "run", reference)


def test_nonfinite_weights_are_never_checkpointed(tmp_path, capsys, monkeypatch, reference):
    real = Loop.train_step

    def poisoned(self, step):  # the update of step 6 turns a weight into NaN, its loss was fine
        out = real(self, step)
        if step == 5:
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(Loop, "train_step", poisoned)
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, "--out", tmp_path / "run")
    assert code == 1 and "weights became NaN or inf by step 6" in one_error_line(err)
    assert checkpoint_step(tmp_path / "run") == 4
    monkeypatch.setattr(Loop, "train_step", real)
    resume_matches(capsys, tmp_path / "run", reference)


class FullDisk:
    """What inr_gon.io sees once the disk fills up: writes stop half-way with ENOSPC."""

    def __init__(self) -> None:
        self.full = False

    def __getattr__(self, name):  # as the `os` module for everything else
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        return HalfWriter(f) if self.full else f

    def open_file(self, path, mode="r", *args, **kwargs):  # stands in for the builtin open
        if self.full and set(mode) & set("wa+"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return open(path, mode, *args, **kwargs)


class HalfWriter:
    def __init__(self, f) -> None:
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()

    def write(self, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize("hit", ["checkpoint", "log"])
def test_disk_full_is_one_line_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch, reference, hit):
    disk, real = FullDisk(), Loop.train_step

    def filling(self, step):  # the disk fills up during step 5
        disk.full = disk.full or step == 4
        return real(self, step)

    monkeypatch.setattr(inr_gon.io, "os", disk)
    monkeypatch.setattr(inr_gon.io, "open", disk.open_file, raising=False)
    monkeypatch.setattr(Loop, "train_step", filling)
    log_every = "1" if hit == "log" else "100"  # 100: nothing is logged before the save at step 6
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, "--log-every", log_every, "--out", run_dir)
    line = one_error_line(err)
    assert code == 2 and os.strerror(errno.ENOSPC) in line
    assert ("train_state.safetensors" in line and "intact" in line) if hit == "checkpoint" \
        else "metrics.jsonl" in line
    monkeypatch.undo()
    assert not list(run_dir.rglob("*.tmp"))  # the half-written temporary file is gone
    assert checkpoint_step(run_dir) == 4
    resume_matches(capsys, run_dir, reference)
    record("disk_full", hit=hit, exit_code=code, message=line, checkpoint_kept=4)


# ---- the writers themselves ------------------------------------------------------------------

def test_a_torn_log_line_costs_only_itself(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "lo')  # cut by a crash
    append_line(path, '{"step": 3, "loss": 0.25}')
    assert [r["step"] for r in read_jsonl(path)] == [1, 3]


def test_atomic_files_get_the_usual_mode(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write(tmp_path / "x.json", b"{}")
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_a_crash_before_config_leaves_a_folder_train_reuses(tmp_path, capsys, monkeypatch):
    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("inr_gon.training.loop.save_config", crash)
    with pytest.raises(KeyboardInterrupt):
        train(TINY, tmp_path / "run", quiet=True)
    monkeypatch.undo()
    assert not is_run(tmp_path / "run") and (tmp_path / "run" / "train_state.safetensors").exists()
    code, _, err = run_cli(capsys, "render", tmp_path / "run")
    assert code == 2 and "not a run folder" in one_error_line(err)
    assert train(TINY, tmp_path / "run", quiet=True).step == TINY.train.steps


def test_fit_sample_and_interpolate_write_only_by_atomic_renames(tmp_path, capsys, monkeypatch):
    """Every file these commands create is a temporary `.<name>.<8 chars>.tmp` beside its target,
    renamed over it: a reader, or a kill, never sees half a latents file, PNG or GIF."""
    import builtins
    import io
    import re

    train(TINY.replace(steps=2), tmp_path / "run", quiet=True)
    for name in ("a.png", "b.png"):
        iio.imwrite(tmp_path / name, torch.randint(0, 256, (8, 8, 3), dtype=torch.uint8).numpy())
    created, renames = [], {}
    real_os_open, real_open, real_replace = os.open, builtins.open, os.replace

    def spy_os_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            created.append(Path(os.fsdecode(path)))
        return real_os_open(path, flags, *args, **kwargs)

    def spy_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+"):
            created.append(Path(os.fsdecode(file)))
        return real_open(file, mode, *args, **kwargs)

    def spy_replace(src, dst, *args, **kwargs):
        renames[Path(os.fsdecode(dst))] = Path(os.fsdecode(src))
        return real_replace(src, dst, *args, **kwargs)

    for target, name, spy in [(os, "open", spy_os_open), (builtins, "open", spy_open),
                              (io, "open", spy_open), (os, "replace", spy_replace)]:
        monkeypatch.setattr(target, name, spy)
    run, a, b, out = tmp_path / "run", tmp_path / "a.png", tmp_path / "b.png", tmp_path / "out"
    for argv in (["fit", run, a, b, "--refine-steps", "2", "--out", out / "fit" / "z.safetensors"],
                 ["sample", run, "-n", "2", "--out", out / "samples"],
                 ["interpolate", run, a, b, "--frames", "3", "--out", out / "walk" / "w.gif"]):
        code, _, err = run_cli(capsys, *argv, "--quiet")
        assert code == 0, err
    monkeypatch.undo()
    outputs = {p for p in out.rglob("*") if p.is_file()}
    assert {p.relative_to(out).as_posix() for p in outputs} == {
        "fit/z.safetensors", "walk/w.gif", "samples/latents.safetensors", "samples/grid.png",
        "samples/sample_0000.png", "samples/sample_0001.png"}
    assert set(renames) == outputs  # each output arrived by a rename ...
    for target, tmp in renames.items():  # ... of a temporary file beside it, made for it
        assert tmp.parent == target.parent and re.fullmatch(rf"\.{re.escape(target.name)}\.\w{{8}}\.tmp",
                                                             tmp.name), tmp
    assert set(created) == set(renames.values())  # and nothing else was ever opened for writing
    record("atomic", commands=3, outputs=len(outputs), written_in_place=0)
