"""On-disk cache of sampled SDF points, one safetensors file per (mesh content, sampling).

The key is the SHA-256 of the file's bytes plus the sampling settings and sampler version,
so a renamed or moved file hits, an edited file or new settings miss. The folder is
$INR_GON_CACHE, else $XDG_CACHE_HOME/inr-gon, else ~/.cache/inr-gon. A damaged entry is a
miss (and is rewritten); a folder that cannot be written only costs the re-sampling.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from inr_gon.errors import InputError, warn
from inr_gon.io import load_tensors, save_tensors

from .sampling import Sampling

_warned_readonly = False


def cache_dir() -> Path:
    if os.environ.get("INR_GON_CACHE"):
        return Path(os.environ["INR_GON_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "inr-gon"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry_path(digest: str, s: Sampling) -> Path:
    key = hashlib.sha256(f"{digest}\n{s.key()}".encode()).hexdigest()[:40]
    return cache_dir() / "sdf" / f"{key}.safetensors"


def load_entry(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays (points, sdf, center, scale), or None on a miss or a damaged file."""
    if not path.is_file():
        return None
    try:
        tensors, _ = load_tensors(path)
        entry = {k: tensors[k].numpy() for k in ("points", "sdf", "center", "scale")}
    except (InputError, KeyError):
        return None
    return entry


def save_entry(path: Path, entry: dict[str, np.ndarray], name: str) -> None:
    global _warned_readonly
    try:
        save_tensors(path, {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in entry.items()},
                     {"source": name, "format": "inr-gon sdf samples"})
    except OSError as e:
        if not _warned_readonly:
            warn(f"cannot write the sample cache in {cache_dir()} ({e.strerror}); "
                 "set INR_GON_CACHE to a writable folder to keep samples between runs")
            _warned_readonly = True
