"""Training a run, top to bottom: the device and its settings (device.py), join the processes
(distributed.py), resolve the config once (and with it the task and the model, resolve.py),
lock the run folder, then start the loop (loop.py: the optimiser, or the weights and its state
read back with --resume, the run's config written, the steps).

Under torchrun each rank runs this whole file; rank 0 alone writes (distributed.py).
"""

from __future__ import annotations

from pathlib import Path

from inr_gon.config import Config
from inr_gon.device import configure, resolve_device
from inr_gon.errors import InputError
from inr_gon.run import is_run
from inr_gon.training import distributed, tblog
from inr_gon.training.loop import Loop, start
from inr_gon.training.record import TrainingError, TrainResult, read_metrics
from inr_gon.training.resolve import resolve
from inr_gon.training.schedule import lr_at

__all__ = ["Loop", "TrainResult", "TrainingError", "lr_at", "read_metrics", "train"]


def train(cfg: Config, out: str | Path, resume: bool = False, quiet: bool = False,
          stop_after: float | None = None) -> TrainResult:
    """Train (or with resume, continue) the run cfg describes into the folder out. stop_after:
    stop as Ctrl-C does (save, no final evaluation) after the first step that ends past this
    many seconds of training, resumes included; the lr schedule does not know of it (unlike
    --time-budget): snapshots of one run along its schedule (benchmarks/quality_clock.py)."""
    run_dir, joined = Path(out), distributed.launched() and not distributed.current().active
    try:
        device = resolve_device(cfg.train.device)
        configure(cfg, device)  # threads, allocator, TF32: before any work
        world, device = distributed.setup(device, cfg.train.batch_size)
        check_folder(run_dir, resume)  # fail fast, before the data is read
        if cfg.train.tensorboard and world.is_main:
            tblog.require()  # a missing optional package is an error at once
        run = resolve(cfg, device, world, resume, quiet)  # the final config, and its task
        with distributed.hold_on_main_rank(run_dir, not resume):
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
