"""Latent files: safetensors with `latents [B, D]` and the item names in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from inr_gon.errors import InputError
from inr_gon.io import load_tensors, save_tensors, unique_names
from inr_gon.training.checkpoint import MODEL_FILE, STATE_FILE, is_run


def save_latents(path: str | Path, names: list[str], z: torch.Tensor, run: str = "") -> None:
    save_tensors(path, {"latents": z.float()}, {"names": json.dumps(names), "run": str(run)})


def check_latents_path(path: str | Path) -> None:
    """Before any work: latents go to a .safetensors file that is not a run's own weights."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise InputError(f"{path}: latents are saved as a .safetensors file")
    if path.name in (MODEL_FILE, STATE_FILE) and is_run(path.parent):
        raise InputError(f"{path}: that is the run's own {path.name}: choose another --out")


def load_latents(path: str | Path, latent_dim: int) -> tuple[list[str], torch.Tensor]:
    tensors, meta = load_tensors(path)
    z = tensors.get("latents")
    if z is None or z.dim() != 2 or z.shape[0] == 0 or not z.dtype.is_floating_point:
        raise InputError(f"{path}: no floating-point 'latents' tensor of shape [B, D], B >= 1")
    if z.shape[1] != latent_dim:
        raise InputError(f"{path}: latents have dimension {z.shape[1]}, the run's is {latent_dim}")
    if not torch.isfinite(z).all():
        raise InputError(f"{path}: latents contain NaN or inf")
    try:
        names = json.loads(meta.get("names", "null"))
    except (ValueError, RecursionError):
        names = None
    if not isinstance(names, list) or len(names) != z.shape[0]:
        names = [f"latent_{i:04d}" for i in range(z.shape[0])]
    # Names from a file become output file names: unique_names makes them safe ones.
    return unique_names([str(n) for n in names]), z.float()
