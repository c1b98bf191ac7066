"""Data-parallel training under torchrun: `torchrun --nproc-per-node N -m inr_gon train ...`.

torchrun (or any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; multi-node
through torchrun's own rendezvous) starts one process per device. Each rank takes an equal
share of the global batch `batch_indices(step, ...)`, which is a pure function of (seed, step),
so the global batch is the one a single process would draw; DistributedDataParallel averages
the gradients, which equals the single-process gradient of the batch-mean loss. Rank 0 alone
logs, previews, checkpoints and holds the run folder's lock (hold_on_main_rank). Backends: NCCL on
CUDA, gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn

from inr_gon.errors import InputError
from inr_gon.run.lock import hold


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def current() -> World:
    """The world of this process: torch.distributed's if initialised, else one process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device, batch_size: int) -> tuple[World, torch.device]:
    """Join the process group torchrun describes (no-op for one process) on `device`
    (device.resolve_device's); a CUDA run takes the GPU of its LOCAL_RANK. The batch must split
    evenly among the ranks. Returns (world, this rank's device)."""
    world, device = _join(device)
    if batch_size % world.size:
        raise InputError(f"--batch-size {batch_size} must be a multiple of the number of "
                         f"processes ({world.size}), so every rank takes an equal share")
    return world, device


def _join(device: torch.device) -> tuple[World, torch.device]:
    if not launched() or dist.is_initialized():
        return current(), device
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise InputError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs here")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise InputError(f"distributed training runs on cuda or cpu, not {device.type}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return current(), device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if current().active:
        dist.barrier()


def shard(idx: Tensor, world: World | None = None) -> Tensor:
    """This rank's contiguous share of a global batch of item indices."""
    w = world or current()
    if not w.active:
        return idx
    per = len(idx) // w.size
    return idx[w.rank * per:(w.rank + 1) * per]


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around the model when launched with several processes."""
    if not current().active:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_min(value: Tensor) -> Tensor:
    """Elementwise minimum over ranks (of a copy); the value itself for one process."""
    return _reduce(value, "MIN")


def all_max(value: Tensor) -> Tensor:
    return _reduce(value, "MAX")


def _collective_device() -> torch.device:
    """Where a tensor sent to the group lives: this rank's GPU under NCCL (set by _join)."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _reduce(value: Tensor, op: str) -> Tensor:
    if not current().active:
        return value
    out = value.clone()
    dist.all_reduce(out, op=getattr(dist.ReduceOp, op))
    return out


def ranks_identical(model: nn.Module) -> bool:
    """True when every rank holds bit-identical weights (max over ranks == min over ranks)."""
    if not current().active:
        return True
    flat = torch.cat([p.detach().flatten().float() for p in model.parameters()])
    return bool(torch.equal(all_max(flat), all_min(flat)))


def rank_generator(gen: torch.Generator | None, rank: int) -> torch.Generator | None:
    """Each rank's own noise stream (VGON sampling noise), a function of (seed, step, rank);
    rank 0 keeps the single-process stream."""
    if gen is None or rank == 0:
        return gen
    return torch.Generator().manual_seed((gen.initial_seed() + rank * 0x9E3779B97F4A7C15) % 2**64)


@contextlib.contextmanager
def hold_on_main_rank(run_dir: Path, create: bool) -> Iterator[None]:
    """Under torchrun rank 0 alone writes, so it alone holds the lock; every rank learns
    whether it got it, so none waits at a barrier for a rank that gave up."""
    with contextlib.ExitStack() as stack:
        error = None
        if current().is_main:
            try:
                stack.enter_context(hold(run_dir, create))
            except InputError as e:
                error = e
        locked = all_min(torch.tensor(int(error is None), device=_collective_device()))
        if error is not None:
            raise error
        if not int(locked):
            raise InputError(f"{run_dir}: rank 0 could not lock the run folder")
        yield
