"""One writer per run folder: an exclusive `flock` on RUN/.lock.

Training (new or `--resume`), and every command whose output lands among the run's own files
(its top level or previews/: export's decoder.onnx, `fit --out RUN/...`, demo) hold the lock
while they run. The kernel drops a `flock` when its process dies, however it dies, so a
SIGKILLed run never leaves a stale lock. A second writer gets an InputError (exit 2) naming
the holder's PID and command, which the holder writes into the lock file once it has the lock.

Readers (render, eval, export to another path) take no lock: every file is replaced by an
atomic rename, and config.json is written once, when the run is created, so any read of
config.json + model.safetensors sees a pair that belongs together.

Creating a run folder is race-free: mkdir (exist_ok) and open(O_CREAT) succeed for every
creator, and `flock(LOCK_EX | LOCK_NB)` on the one lock file lets exactly one of them through;
the caller checks "is this already a run?" only after it holds the lock. The lock file is never
deleted (deleting it would let two processes lock two different files).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from inr_gon.errors import InputError, one_line
from inr_gon.io import write_error

LOCK_FILE = ".lock"
_held: dict[Path, list[int]] = {}  # resolved run folder -> [fd, depth]: re-entrant per process


@contextlib.contextmanager
def hold(run_dir: str | os.PathLike, create: bool = False) -> Iterator[None]:
    """Hold RUN's writer lock for the block (re-entrant within one process). create: make the
    folder first (a new run); else a missing folder is an InputError."""
    key = Path(run_dir).resolve()
    if key in _held:
        _held[key][1] += 1
    else:
        _held[key] = [_acquire(Path(run_dir), create), 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if _held[key][1] == 0:
            os.close(_held.pop(key)[0])  # closing the last descriptor releases the flock


@contextlib.contextmanager
def hold_if_inside(run_dir: str | os.PathLike, out: str | os.PathLike | None,
                   is_dir: bool) -> Iterator[None]:
    """The run's lock when output `out` (a folder, or a file) lands among the run's own files:
    its top level or previews/. Other places, RUN/renders/ included, and None need no lock."""
    run = Path(run_dir).resolve()
    folder = None if out is None else Path(out) if is_dir else Path(out).parent
    inside = folder is not None and folder.resolve() in (run, run / "previews")
    with hold(run_dir) if inside else contextlib.nullcontext():
        yield


def _acquire(run_dir: Path, create: bool) -> int:
    path = run_dir / LOCK_FILE
    try:
        if create:
            run_dir.mkdir(parents=True, exist_ok=True)
        elif not run_dir.is_dir():
            raise InputError(f"{run_dir}: no such run folder")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:  # a file where the folder should be, read-only, ...
        raise write_error(path, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InputError(f"{run_dir} is in use: {holder(path)} is writing to it; wait for it to "
                         "finish, or write elsewhere with --out") from None
    except OSError as e:  # a file system without locks (some network shares)
        os.close(fd)
        raise InputError(f"cannot lock {run_dir}: {e.strerror or e}") from None
    _describe(fd)
    return fd


def _describe(fd: int) -> None:
    """Write this process's PID and command into the lock file (for the next writer's message)."""
    argv = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    info = json.dumps({"pid": os.getpid(), "command": " ".join(argv)[:300],
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (info + "\n").encode(), 0)
    except OSError:  # a full disk: the lock holds all the same, the message says less
        pass


def holder(path: str | os.PathLike, tries: int = 10) -> str:
    """'process PID (COMMAND)' from a held lock file. The holder writes it just after locking,
    so an empty file is read again a few times before giving up on the name."""
    for attempt in range(tries):
        try:
            info = json.loads(Path(path).read_text())
            return one_line(f"process {int(info['pid'])} ({info['command']})")
        except (OSError, ValueError, KeyError, TypeError):
            if attempt + 1 < tries:
                time.sleep(0.05)
    return "another process"
