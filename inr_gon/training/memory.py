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
from inr_gon.training import distributed

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
    cfg: Config  # with points_per_signal (images) or sdf_points (shapes) lowered by the cap
    estimate: int  # bytes of activations per step under cfg
    note: str  # one line for the first progress line
    capped: str = ""  # a warning when the cap changed the run; "" when it did not


def points_per_step(cfg: Config, pixels: int) -> int:
    """Points each signal contributes to a step (pixels: H*W of the training images)."""
    if cfg.summary.modality == "sdf":
        return cfg.sdf.sdf_points
    ppp = cfg.train.points_per_signal
    return ppp if 0 < ppp < pixels else pixels


def plan(cfg: Config, batch: int, pixels: int) -> Plan:
    """The estimate for this config and, when it exceeds cfg.train.max_memory, fewer points."""
    hidden, layers = cfg.net.hidden, cfg.net.layers
    points = points_per_step(cfg, pixels)
    estimate = step_bytes(batch, points, hidden, layers)
    cap = cfg.train.max_memory * 2**20
    note = f"a step needs ~{mib(estimate)} of activations ({batch} x {points} points)"
    if not cap or estimate <= cap:
        return Plan(cfg, estimate, note)
    fit = max(MIN_POINTS, cap // step_bytes(batch, 1, hidden, layers))
    if cfg.net.model != "gon" and cfg.summary.modality == "image":
        return Plan(cfg, estimate, note, f"--max-memory {cfg.train.max_memory}: --model "
                    f"{cfg.net.model} takes whole images; the step needs ~{mib(estimate)}")
    field = "sdf_points" if cfg.summary.modality == "sdf" else "points_per_signal"
    capped = cfg.replace(**{field: int(min(fit, points))})
    new = step_bytes(batch, int(min(fit, points)), hidden, layers)
    note = f"a step needs ~{mib(new)} of activations ({batch} x {int(min(fit, points))} points)"
    return Plan(capped, new, note, f"--max-memory {cfg.train.max_memory} MiB: a step with all "
                f"{points} points of each signal needs ~{mib(estimate)}; drawing {int(min(fit, points))} "
                f"points per signal each step (--{field.replace('_', '-')})")


def fit_batch(cfg: Config, n_train: int, world: distributed.World) -> Config:
    """A batch larger than the training set would repeat items within a step: clamp it to the
    set (a multiple of the processes under torchrun), with a warning."""
    b = cfg.train.batch_size
    fit = max(world.size, n_train // world.size * world.size)
    if b <= fit:
        return cfg
    if world.is_main:
        warn(f"--batch-size {b} is larger than the {n_train} training items: using {fit}")
    return cfg.replace(batch_size=fit)

