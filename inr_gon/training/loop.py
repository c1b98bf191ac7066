"""The training loop: Adam steps on the model's loss, with logs, previews and checkpoints;
`start` makes the optimiser (or reads it and the weights back on --resume) and writes a new
run's checkpoint and config before the first step.

Everything random in a step (which items, which points, the VGON noise) is a function of
(seed, step), so `--resume` from a checkpoint replays the same run bit for bit on the CPU.
Under torchrun each rank trains on its share of the same global batch (distributed.py); rank 0
alone writes. The loop reads values back from the device only at log, preview and checkpoint
steps (every step on the CPU, where that is free), so a CUDA step queues work without waiting.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import torch

from inr_gon import __version__, oom
from inr_gon.config import UNLIMITED_STEPS, Config
from inr_gon.errors import warn
from inr_gon.io import append_line, remove_temp_files, sync_file, write_png
from inr_gon.plots import save_figure, training_figure
from inr_gon.progress import Progress, clock
from inr_gon.run import STATE_FILE, load_checkpoint, save_checkpoint, save_config
from inr_gon.training import distributed
from inr_gon.training.record import TrainingError, TrainResult, read_metrics, rewrite_metrics
from inr_gon.training.resolve import Resolved
from inr_gon.training.schedule import lr_at
from inr_gon.training.step import FiniteGuard, Stepper, weights_finite
from inr_gon.training.tasks import Task
from inr_gon.training.tblog import TensorBoard


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


def oom_message(loop: Loop, what: str) -> str:
    """What ran out, what is safe, and the flags that lower memory."""
    cfg, points = loop.cfg, loop.task.points_option()
    return (f"training ran out of {what} at step {loop.step + 1}; the last good checkpoint is "
            f"step {loop.last_saved} in {loop.run_dir / STATE_FILE} (--resume continues from it); "
            f"lower --batch-size (now {cfg.train.batch_size}) or {points}")


class Loop:
    def __init__(self, cfg: Config, task: Task, model: torch.nn.Module, opt: torch.optim.Optimizer,
                 run_dir: Path, quiet: bool, seconds: float,
                 first_line: str = "", board: TensorBoard | None = None,
                 stop_after: float | None = None) -> None:
        self.cfg, self.task, self.model, self.opt, self.run_dir = cfg, task, model, opt, run_dir
        self.quiet, self.seconds0 = quiet, seconds
        self.world = distributed.current()
        self.stepper = Stepper(distributed.wrap(model, task.device), opt, cfg, task.device)
        self.guard = FiniteGuard(task.device)
        self.sync_every_step = task.device.type == "cpu"  # reading a CPU scalar is free
        self.stop_requested = False  # set by Ctrl-C
        self.stop_agreed = False  # under torchrun: some rank was asked to stop (read at syncs)
        self.last_saved = self.step = 0  # step: steps done (the one running is step + 1)
        self.first_line = first_line  # shown before the first step: what a step needs in memory
        # --time-budget: the share spent, as of the last sync (agreed by the ranks there); the
        # lr schedule reads it, and the loop ends when it reaches 1. Syncs are every step on
        # the CPU and every log/preview/checkpoint step on CUDA, where the clock is only true
        # once the queued work is done.
        self.budget, self.spent = cfg.budget_seconds, 0.0
        self.elapsed = lambda: seconds  # run() sets the clock: seconds of training, resumes included
        self.lr_used = cfg.train.lr
        self.board = board  # --tensorboard
        self.stop_after = stop_after  # train(stop_after=): a Ctrl-C after that many seconds

    def run(self, start: int) -> TrainResult:
        cfg, t0 = self.cfg, time.perf_counter()
        elapsed = self.elapsed = lambda: self.seconds0 + time.perf_counter() - t0  # noqa: E731
        step = self.last_saved = start
        self.update_spent()
        old = catch_stop(self)
        try:
            metric = self.task.metric
            total = None if cfg.train.steps >= UNLIMITED_STEPS else cfg.train.steps
            fields = ("loss", metric, "left") if self.budget else ("loss", metric)
            bar = Progress("train", total, start=start, fields=fields, quiet=self.quiet,
                           first=self.first_line,
                           deadline=t0 + self.budget - self.seconds0 if self.budget else None)
            with bar:
                while step < cfg.train.steps and not self.stopping() and self.spent < 1.0:
                    self.step = step
                    out = self.train_step(step)
                    step += 1
                    self.guard.update(out["loss"], step)
                    if self.stop_after is not None and elapsed() >= self.stop_after:
                        self.stop_requested = True
                    log_now = step % cfg.train.log_every == 0 or step == cfg.train.steps
                    preview_now = bool(cfg.train.preview_every) and step % cfg.train.preview_every == 0
                    save_now = bool(cfg.train.checkpoint_every) and step % cfg.train.checkpoint_every == 0
                    synced = self.sync_every_step or log_now or preview_now or save_now
                    shown = {}
                    if synced:  # the step's figures are on the host: show them as training goes
                        self.sync()
                        loss = float(out["loss"])
                        p = self.task.step_metric(out)
                        shown = {"loss": loss, metric: round(p, 2) if metric == "psnr" else p}
                        if self.budget:
                            shown["left"] = clock(max(self.budget - elapsed(), 0.0))
                    if log_now:
                        norm = {"grad_norm": float(out["grad_norm"])} if "grad_norm" in out else {}
                        self.log({"step": step, "loss": loss, metric: p, "lr": self.lr_used,
                                  **norm, "seconds": round(elapsed(), 3)})
                    bar.update(step, **shown)
                    if preview_now:
                        self.preview(step)
                    if save_now:
                        self.save(step, elapsed())
                    if self.stopping():
                        bar.close(final=False)  # the command says where it stopped
            self.sync()  # the steps since the last sync
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if step != self.last_saved or step == start:
            self.save(step, elapsed())
        stopped = self.stopping()
        out_of_time = self.spent >= 1.0 and step < cfg.train.steps and not stopped
        if not stopped:
            self.preview(step)
        if not self.world.is_main:
            return TrainResult(self.run_dir, step, stopped, math.nan, None, elapsed(),
                               rank=self.world.rank)
        train_metric, val_metric = self.task.evaluate(self.model)
        self.log({"step": step, "eval": True, f"train_{metric}": train_metric,
                  f"val_{metric}": val_metric, "seconds": round(elapsed(), 3)})
        sync_file(self.run_dir / "metrics.jsonl")  # the whole log of a finished run is on disk
        if not stopped:
            self.write_curve()  # after the evaluation, which it shows
        return TrainResult(self.run_dir, step, stopped, train_metric, val_metric, elapsed(), metric,
                           val_items=len(self.task.val_idx), total_steps=cfg.train.steps,
                           out_of_time=out_of_time, time_budget=cfg.train.time_budget)

    def train_step(self, step: int) -> dict:
        coords, values = self.task.batch(step)  # this rank's share of the global batch
        gen = distributed.rank_generator(self.task.noise_generator(step), self.world.rank)
        self.lr_used = lr_at(self.cfg, step, self.spent)
        return self.stepper(coords, values, gen, self.lr_used)

    def update_spent(self) -> None:
        """The share of --time-budget spent; under torchrun the largest of the ranks'."""
        if not self.budget:
            return
        spent = self.elapsed() / self.budget
        if self.world.active:
            spent = float(distributed.all_max(torch.tensor(spent, device=self.task.device)))
        self.spent = spent

    def stopping(self) -> bool:
        """Ctrl-C: at once for one process; under torchrun all ranks stop at the same sync."""
        return self.stop_agreed if self.world.active else self.stop_requested

    def sync(self) -> None:
        """Wait for the device: stop on a non-finite loss (any rank's), agree on Ctrl-C."""
        reduce = distributed.all_min if self.world.active else None
        bad = self.guard.first_bad(reduce)
        if bad is not None:
            raise TrainingError(f"loss became {bad[1]} at step {bad[0]}; the last good "
                                f"checkpoint (step {self.last_saved}) is kept")
        if self.world.active:
            flag = torch.tensor(int(self.stop_requested), device=self.task.device)
            self.stop_agreed = bool(distributed.all_max(flag))
        self.update_spent()

    def log(self, record: dict) -> None:
        if not self.world.is_main:
            return
        append_line(self.run_dir / "metrics.jsonl", json.dumps(record))
        if self.board is not None:
            self.board.scalars(record)

    def save(self, step: int, seconds: float) -> None:
        """Never from non-finite weights (the last good checkpoint stays); under torchrun,
        only when every rank holds the same weights."""
        if not weights_finite(self.model):
            raise TrainingError(f"weights became NaN or inf by step {step}; the last good "
                                f"checkpoint (step {self.last_saved}) is kept")
        if not distributed.ranks_identical(self.model):
            raise TrainingError(f"ranks hold different weights at step {step}; the last good "
                                f"checkpoint (step {self.last_saved}) is kept")
        if self.world.is_main:
            info = {"seconds": seconds, "steps": self.cfg.train.steps, "version": __version__}
            if self.world.active:
                info.update(world_size=self.world.size, ranks_identical=True)
            save_checkpoint(self.run_dir, self.model, self.opt, step, info)
            sync_file(self.run_dir / "metrics.jsonl")  # a power loss costs only later records
        self.last_saved = step

    def preview(self, step: int) -> None:
        if not self.world.is_main:
            return
        strip = self.task.preview(self.model)
        if strip is not None:
            write_png(self.run_dir / "previews" / f"step_{step:06d}.png", strip)
            if self.board is not None:
                self.board.image("preview", strip, step)

    def write_curve(self) -> None:
        if not self.world.is_main:
            return
        rows = read_metrics(self.run_dir)
        if sum("loss" in r for r in rows) >= 2:
            save_figure(training_figure(rows), self.run_dir / "loss.png")


def catch_stop(loop: Loop) -> dict:
    """Ctrl-C (SIGINT) or `kill` (SIGTERM, as nohup'd and CI jobs are stopped) finishes the
    current step, saves, and returns (the CLI exits 130). Returns the handlers to restore."""
    def handler(signum, frame):
        loop.stop_requested = True
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave the signals alone
            break
    return old
