"""The config a run trains with, resolved once before training starts.

The command line gives a config (defaults, preset, config file and flags: cli/options.py);
here DATA is read once (source.py), the step is planned on it (memory.py: the batch clamped
to the training set, the points a step draws capped by --max-memory), and the config is
completed in one replace: what the data determined (its modality and channels), DATA as an
absolute path, the plan, and for a new run the bookkeeping config.json records (the package's
version, the data's summary). It is then checked once (Config.validate, and the model's own
rules in build_model). The model (initialised from the seed) and the task are built with that
final config, and none of them changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inr_gon import __version__
from inr_gon.config import Config
from inr_gon.models.factory import build_model
from inr_gon.training import distributed, memory
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
    plan = memory.fit(cfg, source, world, resume)
    extra = cfg.extra if resume else {**cfg.extra, "version": __version__, "data": source.summary()}
    final = cfg.replace(summary=source.facts, data=source.path, extra=extra, **plan.changes).validate()
    torch.manual_seed(final.train.seed)
    model = build_model(final).to(device)
    return Resolved(final, task_for(final, device, source), model, world, plan.note)
