"""Image stacks stored as .npy / .npz arrays, [N, H, W] or [N, H, W, C].

Stricter than image files, because an array carries no colour metadata: uint8 is
divided by 255, uint16 by 65535, bool becomes 0/1, floats must already lie in [0, 1]
(up to a 1e-3 slack, then clipped). Other integer types are refused rather than
guessed. C = 2 or 4 is taken as grey/RGB + alpha and composited over white.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npformat

from inr_gon.errors import InputError, wxh

from .decode import MAX_PIXELS, flatten_alpha

_FLOAT_SLACK = 1e-3


_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def _header(fp, path: str, available: int) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy header, checked before any pixel is read: a header may ask
    for terabytes that the file cannot hold, or for objects that only pickle could load."""
    version = npformat.read_magic(fp)
    read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
    try:
        shape, _, dtype = read(fp)
    except (IndexError, TypeError) as e:  # numpy's parser on a malformed descr, e.g. []
        raise ValueError(f"malformed .npy header ({type(e).__name__})") from None
    if dtype.hasobject:
        raise InputError(f"cannot read {path}: it holds Python objects, which only pickle could "
                         "load (refused: inr-gon never unpickles input)")
    need, have = math.prod(shape) * dtype.itemsize, available - fp.tell()
    if need > have:
        raise InputError(f"cannot read {path}: truncated or damaged (its header promises "
                         f"{need} bytes of data, the file holds {have})")
    if len(shape) in (3, 4) and shape[1] * shape[2] > MAX_PIXELS:
        raise InputError(f"{path}: images of {wxh(shape[1], shape[2])} are over the "
                         f"{MAX_PIXELS / 1e6:g}-megapixel limit")
    return shape, dtype


def _pick_npz(path: Path) -> tuple[str, np.ndarray]:
    """The 'images' array of a .npz, else its first [N,H,W(,C)] one, chosen by headers."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if not keys:
                raise InputError(f"{path} holds no arrays")
            shapes = {}
            for key in keys:
                info = npz.zip.getinfo(key if key in npz.zip.namelist() else f"{key}.npy")
                with npz.zip.open(info) as fp:
                    shapes[key] = _header(fp, f"{path}[{key}]", info.file_size)[0]
            pick = "images" if "images" in keys else next(
                (k for k in keys if len(shapes[k]) in (3, 4)), None)
            if pick is not None:
                return pick, npz[pick]
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    raise InputError(f"{path} has no [N,H,W] or [N,H,W,C] array (keys: {', '.join(keys)})")


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npz":
        return _pick_npz(path)[1]
    try:
        with open(path, "rb") as fp:
            _header(fp, str(path), os.fstat(fp.fileno()).st_size)
        return np.load(path, allow_pickle=False)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        # allow_pickle=False turns object arrays into a ValueError: never unpickle input.
        raise InputError(f"cannot read {path} as a numpy array: {exc}") from None


def _to_unit(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return (arr.astype(np.float64) / 65535.0).astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        raise InputError(
            f"{path}: integer arrays must be uint8 or uint16, got {arr.dtype} "
            "(convert with .astype(np.uint8), or to float in [0, 1])")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{path}: expected numeric pixel values, got dtype {arr.dtype}")
    out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{path} contains NaN or infinite values")
    lo, hi = float(out.min()), float(out.max())
    if lo < -_FLOAT_SLACK or hi > 1 + _FLOAT_SLACK:
        raise InputError(
            f"{path}: float values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]"
            + (" (divide by 255?)" if hi > 1.5 else ""))
    return np.clip(out, 0.0, 1.0)


def load_array(path: Path, limit: int | None = None) -> np.ndarray:
    """A .npy/.npz image stack -> float32 [N, H, W, C] with C in {1, 3}."""
    arr = _read(path)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise InputError(f"{path}: expected shape [N,H,W] or [N,H,W,C], got {list(arr.shape)}")
    if min(arr.shape) == 0:
        raise InputError(f"{path} is empty (shape {list(arr.shape)})")
    if arr.shape[-1] not in (1, 2, 3, 4):
        raise InputError(
            f"{path}: the last axis must hold 1-4 channels, got {arr.shape[-1]} "
            f"(shape {list(arr.shape)}; channels go last)")
    if limit is not None:
        arr = arr[:limit]  # before conversion, so a big memory-mapped stack stays cheap
    return flatten_alpha(_to_unit(arr, path)).astype(np.float32, copy=False)
