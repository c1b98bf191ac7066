"""One optimisation step, and the watch for non-finite losses that needs no host sync.

The step itself is the GON forward (the shared-grid gradient-origin latent, then the decode),
one backward, one Adam update; optionally under bf16 autocast and/or torch.compile. It never
reads a value back to the host, so on CUDA the loop only waits for the GPU at log and
checkpoint steps (see FiniteGuard).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from inr_gon.config import Config
from inr_gon.device import uses_bf16
from inr_gon.errors import warn

NEVER = 2**62  # "no bad step yet"


class Stepper:
    """step(coords, values, generator, lr) -> detached scalar tensors (loss, rec, kl, mse)."""

    def __init__(self, module: nn.Module, opt: torch.optim.Optimizer, cfg: Config,
                 device: torch.device) -> None:
        # module: the model, or its DistributedDataParallel wrapper
        self.opt, self.device, self.module = opt, device, module
        self.autocast = uses_bf16(cfg, device)
        self.forward = compiled(module) if cfg.train.compile else module
        self.first = cfg.train.compile  # compiling happens in the first step: it may fail there
        self.clip = NormClip(cfg.train.grad_clip) if cfg.train.grad_clip else None
        self.params = [p for group in opt.param_groups for p in group["params"]]  # what it clips

    def __call__(self, coords: Tensor, values: Tensor, generator: torch.Generator | None,
                 lr: float) -> dict[str, Tensor]:
        if not self.first:
            return self.step(coords, values, generator, lr)
        try:
            out = self.step(coords, values, generator, lr)
        except Exception as e:  # no C++ compiler, an unsupported op, ...: eager still works
            reason = (str(e).strip().splitlines() or [""])[0][:200]
            warn(f"torch.compile failed ({type(e).__name__}: {reason}); training without it")
            self.forward = self.module
            out = self.step(coords, values, generator, lr)
        self.first = False
        return out

    def step(self, coords: Tensor, values: Tensor, generator: torch.Generator | None,
             lr: float) -> dict[str, Tensor]:
        for group in self.opt.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.forward(coords, values, generator=generator)
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        if self.clip is not None:
            out["grad_norm"] = self.clip(self.params)
        self.opt.step()
        return {k: v.detach().float() for k, v in out.items() if v.dim() == 0}


class NormClip:
    """Clips the gradient's global norm at `factor` x its running mean, an average over about
    the last 100 steps (EMA 0.99) of the norms after clipping, started at the first step's.

    Why relative: the norm falls by orders of magnitude as the loss does, so a fixed cap
    would bind on every early step or on none late. Why at all: one batch whose gradient is
    far above the recent ones becomes, through Adam's normalisation (its second moment still
    small), a move of several lr on every weight at once; a SIREN's hidden weights start at
    about 0.005 (sqrt(6/256)/30), so a few such steps can leave it where the latent step no
    longer works (docs/quality.md, "A 60-minute run that collapsed"). It does not stop a slow
    rise that the mean follows (there, the lower lr of long schedules did). No host sync; the
    mean is not checkpointed, so a resume starts it again."""

    def __init__(self, factor: float, decay: float = 0.99) -> None:
        self.factor, self.decay = factor, decay
        self.mean: Tensor | None = None

    def __call__(self, params: list[nn.Parameter]) -> Tensor:
        """Clip the params' gradients in place; returns the norm before clipping."""
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float())
                                                     for g in grads]))
        mean = norm if self.mean is None else self.mean
        limit = self.factor * mean
        coef = torch.clamp(limit / (norm + 1e-12), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
        self.mean = self.decay * mean + (1 - self.decay) * torch.minimum(norm, limit)
        return norm


def compiled(module: nn.Module, backend: str = "inductor") -> nn.Module:
    """torch.compile of the forward; AOTAutograd compiles the backward with it. Shapes are
    static within a run (fixed batch and point count), so no dynamic-shape guards."""
    return torch.compile(module, backend=backend, dynamic=False)


class FiniteGuard:
    """Remembers on the device the first step whose loss was NaN or infinite.

    update() queues two tiny device ops per step; first_bad() reads them back (a sync), so
    the loop calls it only where it syncs anyway (log, preview, checkpoint steps), or every
    step on the CPU, where reading a scalar costs nothing.
    """

    def __init__(self, device: torch.device) -> None:
        self.step = torch.full((), NEVER, dtype=torch.int64, device=device)
        self.loss = torch.zeros((), dtype=torch.float32, device=device)

    def update(self, loss: Tensor, step: int) -> None:
        """loss of the (1-based) step just taken."""
        new = ~torch.isfinite(loss) & (self.step == NEVER)
        self.step = torch.where(new, step, self.step)
        self.loss = torch.where(new, loss.float(), self.loss)

    def first_bad(self, reduce=None) -> tuple[int, float] | None:
        """(step, loss) of the first non-finite loss, or None. reduce: a min over ranks."""
        s = int(self.step if reduce is None else reduce(self.step))
        if s >= NEVER:
            return None
        # another rank's loss when this rank's own stayed finite: its value is not here
        return s, float(self.loss) if int(self.step) == s else float("nan")


@torch.no_grad()
def weights_finite(model: nn.Module) -> bool:
    """One sync: are all parameters finite? Checked before every checkpoint write."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())
