"""What a run reports: its result, the error that stops it, and metrics.jsonl (one JSON record
a line, read back by the loss curve and --resume)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from inr_gon.io import atomic_write, read_jsonl


class TrainingError(Exception):
    """Training stopped on its own (non-finite loss); the last good checkpoint is kept."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    interrupted: bool
    train_metric: float
    val_metric: float | None
    seconds: float
    metric: str = "psnr"  # what train_metric/val_metric hold: psnr (images) or sdf_l1 (shapes)
    rank: int = 0  # under torchrun: only rank 0 evaluates and reports
    val_items: int = 0  # held-out items behind val_metric
    total_steps: int = 0  # the run's --steps (step < total_steps when stopped early)
    out_of_time: bool = False  # ended by --time-budget (not interrupted: a finished run)
    time_budget: str = "0"  # the run's --time-budget

    @property
    def train_psnr(self) -> float:
        """train_metric under its earlier name (an SDF run's is its clamped L1)."""
        return self.train_metric

    @property
    def val_psnr(self) -> float | None:
        """val_metric under its earlier name."""
        return self.val_metric


def read_metrics(run_dir: Path) -> list[dict]:
    """Records with an integer step (and a numeric loss, if any); lines cut by a crash or
    edited by hand are skipped."""
    number = (int, float)
    return [r for r in read_jsonl(run_dir / "metrics.jsonl")
            if type(r.get("step")) is int and isinstance(r.get("loss", 0.0), number)]


def rewrite_metrics(run_dir: Path, step: int) -> None:
    """Keep only records up to the checkpoint being resumed, so the log reads as one run."""
    rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step and not r.get("eval")]
    atomic_write(run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
