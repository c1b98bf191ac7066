"""Hostile-input rows for a run folder another process is writing (inr_gon/run/lock.py): every
writer exits 2 naming the holder; readers, and outputs outside the run's own files, still work.

The test process itself holds the flock on {run}/.lock (or {out}/.lock) through a descriptor of
its own, so the command under test, in the same process but on another open file, is refused as
a second process would be: no child, no timing. `release` (the row's check) lets go.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from hostile_cases import TRAIN, Case, render, resume
from hostile_commands import AB, both, fit, pngs, sample, walk
from hostile_shapes import mesh

_held: list[int] = []
IN_USE = ("is in use", "process", "(inr-gon train --out the-holder)")


def locked(rel: str):
    def build(d: Path) -> None:
        folder = d / rel
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": "inr-gon train --out the-holder"}).encode())
        _held.append(fd)
    return build


def release(d: Path) -> None:
    while _held:
        os.close(_held.pop())


def row(id: str, argv: list[str], expect: str, files, run: str = "gon") -> Case:
    return Case(f"locked-{id}", argv, expect, IN_USE if expect == "error" else (), files,
                check=release, run=run)


CASES = [
    row("train-new", ["train", "builtin:shapes:8", *TRAIN], "error", locked("out")),
    row("train-resume", resume(), "error", locked("run")),
    row("export-into-run", ["export", "{run}", "--quiet"], "error", locked("run")),
    row("fit-out-into-run", fit(*AB, out="{run}/z.safetensors"), "error", both(pngs(), locked("run"))),
    row("render-out-is-run", ["render", "{run}", "-n", "1", "--out", "{run}", "--quiet"], "error",
        locked("run")),
    row("render-out-in-previews", ["render", "{run}", "-n", "1", "--out", "{run}/previews", "--quiet"],
        "error", locked("run")),
    row("sample-out-is-run", ["sample", "{run}", "-n", "1", "--out", "{run}", "--quiet"], "error",
        locked("run")),
    row("interpolate-out-into-run", walk(*AB, out="{run}/walk.gif"), "error", both(pngs(), locked("run"))),
    row("mesh-out-is-run", mesh("-r", "8", out="{run}"), "error", locked("run"), run="sdf"),
    row("demo-out", ["demo", "--out", "{out}", "--quiet"], "error", locked("out")),
    # readers, and outputs beside the run's own files
    row("render-reader", render("-n", "1"), "ok", locked("run")),
    row("render-default-out", ["render", "{run}", "-n", "1", "--quiet"], "ok", locked("run")),
    row("export-elsewhere", ["export", "{run}", "--out", "{out}/d.onnx", "--quiet"], "ok", locked("run")),
    row("fit-reader", fit(*AB), "ok", both(pngs(), locked("run"))),
    row("eval-reader", ["eval", "{run}", "builtin:shapes:8", "--json", "--quiet"], "ok", locked("run")),
    row("sample-reader", sample("-n", "1"), "ok", locked("run")),
    row("mesh-reader", mesh("-r", "8"), "ok", locked("run"), run="sdf"),
]
