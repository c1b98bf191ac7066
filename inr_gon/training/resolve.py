"""The config a run trains with, resolved once before training starts.

The command line gives a config (defaults, preset, config file and flags: cli/options.py);
here DATA is read once (source.py) and the config is completed from it: what the data
determined (its modality and channels), DATA as an absolute path, then the batch clamped to the
training set and the points a step draws capped by --max-memory (memory.py). The model
(initialised from the seed) and the task are built with that final config, and none of them
changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inr_gon.config import Config
from inr_gon.models.factory import build_model, check_config
from inr_gon.training import distributed, memory, perf
from inr_gon.training.source import read_source
from inr_gon.training.tasks import Task, task_for


@dataclass(frozen=True)
class Resolved:
    cfg: Config  # what the run trains with, and what config.json records
    task: Task  # built with cfg
    model: nn.Module  # built with cfg on the task's device, at its initialisation
    world: distributed.World  # the processes training together
    note: str  # what a step needs in memory: the progress bar's first line


def resolve(cfg: Config, device: torch.device, world: distributed.World, resume: bool,
            quiet: bool = False) -> Resolved:
    """Read DATA, complete cfg from it, build the model and the task. A resumed run keeps the
    batch and the points it was trained with."""
    source = read_source(cfg, quiet)
    checked = check_config(cfg.replace(summary=source.facts, data=source.path))
    plan = memory.fit(checked, len(source.train_idx), source.pixels, world, resume)
    perf.configure(plan.cfg, device)
    torch.manual_seed(plan.cfg.train.seed)
    model = build_model(plan.cfg).to(device)
    return Resolved(plan.cfg, task_for(plan.cfg, device, source), model, world, plan.note)
