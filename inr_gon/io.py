"""Atomic file writes (temporary file in the same folder, fsync, rename) and safe reads.

Nothing here unpickles: weights are safetensors, everything else JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from inr_gon.errors import InputError


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Readers see the old file or the new one, never a partial one, even after SIGKILL."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, st_save(tensors, metadata=metadata))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) from a safetensors file; anything else is an InputError."""
    try:
        data = Path(path).read_bytes()
        tensors = st_load(data)
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__") or {}
    except FileNotFoundError:
        raise InputError(f"{path}: missing") from None
    except (OSError, SafetensorError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({e})") from None
    return tensors, meta


def to_uint8(image: np.ndarray, rows: int = 256) -> np.ndarray:
    """float in [0, 1] -> uint8 (rounded), a block of rows at a time: no full-size float
    temporaries (a 4096 x 4096 RGB render is 200 MB per float copy)."""
    if image.dtype == np.uint8:
        return image
    out = np.empty(image.shape, dtype=np.uint8)
    for r in range(0, image.shape[0], rows):
        out[r:r + rows] = np.clip(image[r:r + rows], 0.0, 1.0) * 255.0 + 0.5  # truncates
    return out


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """float [H, W, C] in [0, 1] (C = 1 or 3), or uint8, -> 8-bit PNG."""
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    atomic_write(path, iio.imwrite("<bytes>", image, extension=".png"))
