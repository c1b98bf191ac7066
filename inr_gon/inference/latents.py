"""Latent files, the one format every command reads and writes: safetensors with `latents [B, D]`
float32 and the item names (a JSON list) in the metadata. Readable with numpy alone: see
examples/onnx_render.py."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from inr_gon.errors import InputError
from inr_gon.io import load_tensors, save_tensors, unique_names
from inr_gon.run import MODEL_FILE, STATE_FILE, is_run


def save_latents(path: str | Path, names: list[str], z: torch.Tensor, run: str = "") -> None:
    save_tensors(path, {"latents": z.float()}, {"names": json.dumps(names), "run": str(run)})


def check_latents_path(path: str | Path) -> None:
    """Before any work: latents go to a .safetensors file that is not a run's own weights."""
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise InputError(f"{path}: latents are saved as a .safetensors file")
    if path.name in (MODEL_FILE, STATE_FILE) and is_run(path.parent):
        raise InputError(f"{path}: that is the run's own {path.name}: choose another --out")


FORMAT = "latents must be a .safetensors file written by `inr-gon fit --out` (or `sample`)"


def _other_format(path: Path) -> str | None:
    """What a file that cannot be a latents file is instead, or None when it may be one."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None  # load_tensors names the problem (missing, unreadable)
    if head.startswith(b"\x93NUMPY"):
        return "a .npy array"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive such as .npz"
    if len(head) < 9 or head[8:9] != b"{":  # safetensors: 8-byte header length, then JSON
        return f"a {path.suffix or 'file with no extension'} file that is not safetensors"
    return None


def load_latents(path: str | Path, latent_dim: int) -> tuple[list[str], torch.Tensor]:
    """(names, latents [B, D] float32) from a latents file; InputError naming the format."""
    path = Path(path)
    other = _other_format(path)
    if other is not None:
        raise InputError(f"{path}: {FORMAT} (got {other})")
    try:
        tensors, meta = load_tensors(path)
    except InputError as e:
        if not path.exists():
            raise
        raise InputError(f"{path}: {FORMAT} ({str(e).split(': ', 1)[-1]})") from None
    z = tensors.get("latents")
    if z is None or z.dim() != 2 or z.shape[0] == 0 or not z.dtype.is_floating_point:
        raise InputError(f"{path}: no floating-point 'latents' tensor of shape [B, D], B >= 1: "
                         f"{FORMAT}")
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


def latent_spec(spec: str | Path) -> tuple[str, str] | None:
    """'z.safetensors' -> ('z.safetensors', ''); 'z.safetensors:NAME' -> ('z.safetensors', 'NAME');
    None when spec names no latents file (an image, say)."""
    spec = str(spec)
    file, name = spec, ""
    if not spec.lower().endswith(".safetensors"):
        file, _, name = spec.rpartition(":")
    return (file, name) if file.lower().endswith(".safetensors") else None


def pick_latent(spec: str | Path, latent_dim: int) -> tuple[str, torch.Tensor] | None:
    """A latents file's first latent, or the one saved under NAME -> (name, latent [D]);
    None when spec names no latents file."""
    parsed = latent_spec(spec)
    if parsed is None:
        return None
    file, name = parsed
    names, z = load_latents(file, latent_dim)
    if not name:
        return names[0], z[0]
    if name not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise InputError(f"{file}: no latent named '{name}' (it holds {shown})")
    return name, z[names.index(name)]
