"""The config a run trains with, resolved once before training starts.

The command line gives a config (defaults, preset, config file and flags: cli/options.py);
here DATA is read once and the config is completed from it: what the data determined (its
modality and channels), DATA as an absolute path, the batch clamped to the training set and the
points a step draws capped by --max-memory. The task is then built with that final config, and
nothing changes either afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from inr_gon.config import Config
from inr_gon.errors import warn
from inr_gon.training import distributed, memory
from inr_gon.training.batches import split_indices
from inr_gon.training.tasks import Source, Task, read_source, task_for


@dataclass(frozen=True)
class Resolved:
    cfg: Config  # what the run trains with, and what config.json records
    task: Task  # built with cfg
    note: str  # what a step needs in memory: the progress bar's first line


def resolve(cfg: Config, device: torch.device, world: distributed.World, resume: bool,
            quiet: bool = False) -> Resolved:
    """Read DATA, complete cfg from it, build the task. A resumed run keeps the batch and the
    points it was trained with."""
    source = read_source(cfg, quiet)
    cfg = cfg.replace(summary=source.facts, data=resolved_source(cfg.dataset.data)).validate()
    if not resume:
        cfg = memory.fit_batch(cfg, _train_items(cfg, source), world)
    plan = memory.plan(cfg, cfg.train.batch_size // world.size, source.pixels)
    if plan.capped and not resume:  # every rank draws the capped points
        if world.is_main:
            warn(plan.capped)
        cfg = plan.cfg
    return Resolved(cfg, task_for(cfg, device, source), plan.note)


def resolved_source(data: str) -> str:
    """DATA as a run folder records it: a path made absolute, so the run loads from anywhere."""
    return data if data.startswith("builtin:") else str(Path(data).resolve())


def _train_items(cfg: Config, source: Source) -> int:
    return len(split_indices(source.count, cfg.dataset.val_fraction, cfg.train.seed)[0])
