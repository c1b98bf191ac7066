"""What a training step holds: a batch no larger than the training set, and the memory it
needs, said before training starts, with the cap that keeps it under --max-memory by drawing
fewer points per signal.

A GON step runs the SIREN twice over every point of the batch (at z0 = 0 with its graph kept
for the gradient-origin step, then at z) and back-propagates through both, so activations grow
as batch x points x hidden x layers. FACTOR, the float32 values kept per (point, unit, layer),
was measured once as the peak resident memory of `train` processes above that of a tiny run
(CPU, fp32; see the commit that added this file); the estimate is for activations only, not
for the weights, the data or the evaluation at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from inr_gon.config import Config
from inr_gon.errors import warn
from inr_gon.modality import MODALITIES
from inr_gon.training import distributed
from inr_gon.training.source import Source

FACTOR = 4  # float32 values kept per (point, hidden unit, layer) in one step, measured
BYTES = 4  # float32
MIN_POINTS = 64  # a cap never draws fewer points than this per signal


def step_bytes(batch: int, points: int, hidden: int, layers: int) -> int:
    """Activation memory of one step: batch x points x hidden x layers x 4 bytes x FACTOR."""
    return batch * points * hidden * layers * BYTES * FACTOR


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.1f} GiB"


@dataclass
class Plan:
    changes: dict  # for the config: batch_size clamped, points_per_signal or sdf_points capped
    estimate: int  # bytes of activations per step under cfg
    note: str  # one line for the first progress line
    capped: str = ""  # a warning when the cap changed the run; "" when it did not


def points_per_step(cfg: Config, modality: str, pixels: int) -> int:
    """Points each signal contributes to a step (pixels: H*W of the training images)."""
    if modality == "sdf":
        return cfg.sdf.sdf_points
    ppp = cfg.train.points_per_signal
    return ppp if 0 < ppp < pixels else pixels


def plan(cfg: Config, batch: int, pixels: int, batch_size: int | None = None,
         modality: str = "image") -> Plan:
    """The estimate for this config and, when it exceeds cfg.train.max_memory, fewer points.
    batch: signals per step on this process; batch_size: the run's, if it changes."""
    hidden, layers = cfg.net.hidden, cfg.net.layers
    points = points_per_step(cfg, modality, pixels)
    estimate = step_bytes(batch, points, hidden, layers)
    cap, size = cfg.train.max_memory * 2**20, {} if batch_size is None else {"batch_size": batch_size}
    note = f"a step needs ~{mib(estimate)} of activations ({batch} x {points} points)"
    if not cap or estimate <= cap:
        return Plan(size, estimate, note)
    # max(1, ...): the config is checked after the plan; a zero width must not divide here
    fit = int(min(max(MIN_POINTS, cap // max(1, step_bytes(batch, 1, hidden, layers))), points))
    if cfg.net.model != "gon" and modality == "image":
        return Plan(size, estimate, note,
                    f"--max-memory {cfg.train.max_memory}: --model {cfg.net.model} takes whole "
                    f"images; the step needs ~{mib(estimate)}")
    field = MODALITIES[modality].points_field
    new = step_bytes(batch, fit, hidden, layers)
    note = f"a step needs ~{mib(new)} of activations ({batch} x {fit} points)"
    return Plan({**size, field: fit}, new, note,
                f"--max-memory {cfg.train.max_memory} MiB: a step with all {points} points of "
                f"each signal needs ~{mib(estimate)}; drawing {fit} points per signal each step "
                f"(--{field.replace('_', '-')})")


def fit(cfg: Config, source: Source, world: distributed.World, resume: bool) -> Plan:
    """The step a run takes on source's data: its batch clamped to the training set (a multiple
    of the processes), its points capped by --max-memory (plan), each with a warning; a resumed
    run keeps its own."""
    n_train = len(source.train_idx)
    b, most = cfg.train.batch_size, max(world.size, n_train // world.size * world.size)
    fitted = b if resume else min(b, most)
    if fitted < b and world.is_main:
        warn(f"--batch-size {b} is larger than the {n_train} training items: using {most}")
    step = plan(cfg, fitted // world.size, source.pixels, fitted if fitted != b else None,
                source.facts.modality)
    if resume:
        return Plan({}, step.estimate, step.note)  # the points it was trained with
    if step.capped and world.is_main:
        warn(step.capped)
    return step
