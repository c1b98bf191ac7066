"""The learning rate of a step: a pure function of the config, the step and the time spent."""

from __future__ import annotations

import math

from inr_gon.config import Config


def lr_at(cfg: Config, step: int, spent: float = 0.0) -> float:
    """Cosine decay from lr to lr * lr_min_ratio over the run: over cfg.steps, or over the
    time budget, whichever is further along (spent: share of --time-budget used, 0..1); the
    first warmup_steps steps scale it by (step + 1) / (warmup_steps + 1), nanoGPT's ramp, in
    steps even under a time budget so that a resume replays it.

    Why not torch.optim.lr_scheduler: CosineAnnealingLR computes each lr from the previous one
    (1981 of 2000 steps differ from this closed form in the last bits, lr 1e-4, ratio 0.1), and
    cannot follow `--resume --steps N`, which stretches the schedule; LambdaLR reproduces these
    values bit for bit but only wraps this same formula, adding state to checkpoint. A pure
    function of (cfg, step, spent) is what keeps --resume and the ranks of torchrun exact (a
    time budget's `spent` is agreed by the ranks at each sync; it is not replayable)."""
    t = min(max(step / max(cfg.train.steps, 1), spent), 1.0)
    lr, ratio = cfg.train.lr, cfg.train.lr_min_ratio
    warm = min(1.0, (step + 1) / (cfg.train.warmup_steps + 1))
    return warm * lr * (ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * t)))
