"""Training a run, top to bottom: join the processes, resolve the config once (and with it the
task and the model, resolve.py), lock the run folder, make the optimiser (or read the weights and
its state back with --resume), write the run's config, then hand everything to the loop
(loop.py).

Under torchrun each rank runs this whole file; rank 0 alone writes (distributed.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from inr_gon import __version__, oom
from inr_gon.config import Config
from inr_gon.errors import InputError, warn
from inr_gon.io import remove_temp_files
from inr_gon.run import is_run, load_checkpoint, save_checkpoint, save_config
from inr_gon.training import distributed, tblog
from inr_gon.training.loop import Loop, oom_message
from inr_gon.training.record import TrainingError, TrainResult, read_metrics, rewrite_metrics
from inr_gon.training.resolve import Resolved, resolve
from inr_gon.training.schedule import lr_at
from inr_gon.training.tblog import TensorBoard

__all__ = ["Loop", "TrainResult", "TrainingError", "lr_at", "read_metrics", "train"]


def train(cfg: Config, out: str | Path, resume: bool = False, quiet: bool = False,
          stop_after: float | None = None) -> TrainResult:
    """Train (or with resume, continue) the run cfg describes into the folder out. stop_after:
    stop as Ctrl-C does (save, no final evaluation) after the first step that ends past this
    many seconds of training, resumes included; the lr schedule does not know of it (unlike
    --time-budget): snapshots of one run along its schedule (benchmarks/quality_clock.py)."""
    run_dir, joined = Path(out), distributed.launched() and not distributed.current().active
    try:
        world, device = distributed.setup(cfg.train.device, cfg.train.batch_size)
        check_folder(run_dir, resume)  # fail fast, before the data is read
        if cfg.train.tensorboard and world.is_main:
            tblog.require()  # a missing optional package is an error at once
        run = resolve(cfg, device, world, resume, quiet)  # the final config, and its task
        with distributed.hold_on_main_rank(run_dir, not resume, world, device):
            check_folder(run_dir, resume)  # again, now that no other process can write here
            result = start(run, run_dir, resume, quiet, stop_after)
        if joined:
            distributed.barrier()  # rank 0 evaluates last: nobody leaves the group before it
        return result
    finally:
        if joined:
            distributed.teardown()


def check_folder(run_dir: Path, resume: bool) -> None:
    if is_run(run_dir) and not resume:
        raise InputError(f"{run_dir} already holds a run: pass --resume, or another --out")
    if resume and not is_run(run_dir):
        raise InputError(f"{run_dir}: nothing to resume (not a run folder)")


def start(run: Resolved, run_dir: Path, resume: bool, quiet: bool,
          stop_after: float | None = None) -> TrainResult:
    """Model, optimiser and folder ready (fresh, or read back from the checkpoint), then the loop."""
    cfg, task, model, world = run.cfg, run.task, run.model, run.world
    board = TensorBoard(run_dir, start=0) if cfg.train.tensorboard and world.is_main else None
    if cfg.train.steps == 0 and world.is_main and not resume:
        warn("--steps 0: the run is written untrained (weights at their initialisation)")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    step, info = 0, {"seconds": 0.0}
    for folder in (run_dir, run_dir / "previews") if world.is_main else ():
        remove_temp_files(folder)  # of writes a crash cut short
    if resume:
        step, info = load_checkpoint(run_dir, model, opt)
    distributed.barrier()  # every rank has checked the folder and read its checkpoint
    if world.is_main:
        if not resume:
            cfg.extra.update(version=__version__, data=task.summary())
            # Checkpoint first, config last: the folder is a run (config.json) only once it can
            # be loaded and resumed; a crash before that leaves a folder `train` may reuse.
            save_checkpoint(run_dir, model, opt, 0, {**info, "steps": cfg.train.steps,
                                                     "version": __version__})
            save_config(run_dir, cfg)
        rewrite_metrics(run_dir, step)
    if board is not None and step:
        board = TensorBoard(run_dir, step)  # drop what was logged after the checkpoint
    loop = Loop(cfg, task, model, opt, run_dir, quiet or not world.is_main, info.get("seconds", 0.0),
                first_line=run.note, board=board, stop_after=stop_after)
    try:
        with oom.guard(lambda what: oom_message(loop, what)):
            return loop.run(step)
    finally:
        if board is not None:
            board.close()
