"""Where a run computes and how: `auto` picks cuda, then mps, then cpu; and the process
settings that make a training step fast there. None of the settings changes the arithmetic
except TF32, which is asked for by name (`--precision tf32`).

- Allocator (CPU, glibc): a training step allocates and frees tens of [B, N, H] tensors of
  tens of MB. glibc serves each from a fresh mmap and unmaps it on free, so every step pays
  page faults on every byte it touches (measured at the reference config: 252 thousand minor
  faults per step, 10-17 thousand with this setting, and 1.45 against 0.81 s per step; see
  benchmarks/train_step.py). Keeping large blocks in the heap and not trimming it reuses the
  same pages step after step. The price is that freed memory is kept by the process.
- Threads: `threads` > 0 sets torch's intra-op pool (default: one per physical core).
- CUDA: TF32 matmuls for precision "tf32"; bf16 autocast is the step's business (step.py),
  asked for by name or by "auto" for the models measured to gain (BF16_MODELS) where the
  device computes bf16 natively (`native_bf16`): elsewhere bf16 is emulated and slower.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch

from inr_gon.config import Config
from inr_gon.errors import InputError


def resolve_device(name: str = "auto") -> torch.device:
    """auto picks cuda, then mps, then cpu; an unavailable device is a usage error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device '{name}' (use auto, cpu, cuda[:i] or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' asked for, but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"device '{name}' does not exist ({torch.cuda.device_count()} GPUs)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' asked for, but MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unsupported device '{name}'")
    return device


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_KEEP = {"done": False}


def keep_freed_memory() -> bool:
    """glibc only: no mmap for large blocks, no trimming of the heap. True if applied."""
    if _KEEP["done"]:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: leave the allocator alone
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    _KEEP["done"] = ok
    return ok


def native_bf16(device: torch.device) -> bool:
    """Whether the device multiplies bf16 natively: CPUs with AVX512-BF16 or AMX (x86; torch's
    own probes, absent from older builds), CUDA GPUs that support it."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


# (model, modality) measured to gain from bf16 at equal wall-clock: the local super-resolution
# model (1.89x the steps, the same figures at equal steps: docs/superres.md) and the image GON
# with its float32 guards (1.29x the steps, +0.7 dB held out in 5 minutes: docs/quality.md).
# The paper's 4 x 128 SIREN (no grid) was slower in bf16 here, and the SDF GON is unmeasured.
BF16_MODELS = (("local", "image"), ("gon", "image"))


def uses_bf16(cfg: Config, device: torch.device) -> bool:
    """Whether the training step runs under bf16 autocast: `--precision bf16`, or `auto` for a
    model in BF16_MODELS on a device with native bf16 (`native_bf16`)."""
    precision, kind = cfg.train.precision, (cfg.net.model, cfg.summary.modality)
    return precision == "bf16" or (precision == "auto" and kind in BF16_MODELS
                                   and native_bf16(device))


def configure(cfg: Config, device: torch.device) -> dict:
    """Apply the settings for a training run; returns what was applied (for the log)."""
    applied = {}
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    applied["threads"] = torch.get_num_threads()
    applied["bf16"] = uses_bf16(cfg, device)
    if device.type == "cpu":
        applied["keep_freed_memory"] = keep_freed_memory()
    if device.type == "cuda":
        tf32 = cfg.train.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        applied["tf32"] = tf32
    return applied
