"""Which items and which noise a step draws: pure functions of (seed, step), so a resumed run,
or a rank of a distributed one, draws the same batch; and the fixed train/val split."""

from __future__ import annotations

import torch
from torch import Tensor

from inr_gon.config import Config


def batch_indices(step: int, batch: int, n: int, seed: int) -> Tensor:
    """Items of a step: consecutive slices of one seeded permutation per epoch, a pure function
    of (seed, step) so a resumed run, or a rank of a distributed one, draws the same batch."""
    out, start = [], step * batch
    while sum(len(o) for o in out) < batch:
        epoch, pos = divmod(start, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed((seed * 7919 + epoch) % 2**64))
        take = perm[pos:pos + batch - sum(len(o) for o in out)]
        out.append(take)
        start += len(take)
    return torch.cat(out)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """(train, val) item indices; at least one of each when there is room."""
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 and n >= 2 else 0
    perm = torch.randperm(n, generator=torch.Generator().manual_seed((seed + 12345) % 2**64))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def step_generator(cfg: Config, step: int, salt: int = 0) -> torch.Generator:
    """The CPU generator of step's random draws (points, VGON noise); salt tells draws apart."""
    return torch.Generator().manual_seed(((cfg.train.seed * 1_000_003 + step) * 8 + salt) % 2**64)
