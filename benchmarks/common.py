"""What every benchmark here records: the machine, the load on it, medians, JSON results."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine(device: torch.device | str = "cpu") -> dict:
    """Name the machine: CPU model and cores, GPU, torch, threads, load average."""
    device = torch.device(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"host": platform.node(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "load_avg_1m": _load()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def timed(fn, device: torch.device | None = None) -> float:
    """Wall seconds of one call of fn; on CUDA, synchronised before and after."""
    sync = device is not None and device.type == "cuda"
    if sync:
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if sync:
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def median_timed(fn, repeats: int) -> float:
    """The median of `repeats` timed calls, after one warm-up call (allocations, thread pools)."""
    fn()
    return median([timed(fn) for _ in range(repeats)])


def write_result(name: str, record: dict) -> Path:
    record = {"benchmark": name, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              **record}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def typed_fields(cfg, spec: str) -> dict:
    """'layers=3;lr=3e-4' -> {"layers": 3, "lr": 0.0003}, each value of its field's type in cfg."""
    changes = {}
    for item in filter(None, spec.split(";")):
        key, _, value = item.partition("=")
        current = cfg.flat().get(key)  # unknown: passed on, for Config to name
        if isinstance(current, bool):
            changes[key] = value.strip().lower() in ("1", "true", "yes")
        else:
            changes[key] = type(current)(value) if current is not None else value
    return changes


def table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# The options several benchmarks take, spelled, typed and explained once.
ARGS: dict[str, tuple[type, str]] = {
    "size": (int, "image side S (S x S)"),
    "steps": (int, "training steps"),
    "repeats": (int, "timed repeats (medians are quoted)"),
    "threads": (int, "torch CPU threads (0: torch's default)"),
    "device": (str, "cpu | cuda[:i]"),
    "seed": (int, "seed of everything random"),
    "out": (str, "where the results go"),
}


def parser(doc: str | None, **defaults: object) -> argparse.ArgumentParser:
    """A benchmark's parser: its docstring as the description (the first line is the summary)
    and the shared options it names, each with its default: parser(__doc__, steps=300)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in defaults.items():
        kind, text = ARGS[name]
        p.add_argument("--" + name, type=kind, default=default, help=f"{text} (default: %(default)s)")
    return p
