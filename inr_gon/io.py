"""Atomic file writes (temporary file in the same folder, fsync, rename) and safe reads.

Nothing here unpickles: weights are safetensors, everything else JSON. A write that the
system refuses (disk full, read-only, a file where a folder should be) is an InputError
naming the file: the user can fix it, and the file it would have replaced is untouched.
"""

from __future__ import annotations

import json
import os
import re
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

TMP_SUFFIX = ".tmp"  # temporary files are ".<name>.<8 random characters>.tmp" beside their target
_TMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # mkstemp makes 0600 files: give renamed files the usual umask mode


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Readers see the old file or the new one, never a partial one, even after SIGKILL."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            _chmod(f.fileno())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise write_error(path, e) from None
        raise
    _fsync_dir(path.parent)


def _chmod(fd: int) -> None:
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
    except OSError:  # file systems without modes (FAT, some network shares)
        pass


def write_error(path: Path, e: OSError) -> InputError:
    reason = e.strerror or str(e)
    if isinstance(e, (FileExistsError, NotADirectoryError)):  # from mkdir of a parent
        reason = "a file stands where one of its folders should be"
    return InputError(f"cannot write {path}: {reason}")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line (a log record). A line cut by a crash is closed first, so it costs
    only itself: readers skip it and the records after it stay whole."""
    path = Path(path)
    try:
        with open(path, "ab+") as f:  # appends go to the end whatever the read position
            size, torn = f.seek(0, os.SEEK_END), False
            if size:
                f.seek(size - 1)
                torn = f.read(1) != b"\n"
            f.write((b"\n" if torn else b"") + line.rstrip("\n").encode() + b"\n")
    except OSError as e:
        raise write_error(path, e) from None


def sync_file(path: str | os.PathLike) -> None:
    """fsync an appended file (metrics.jsonl at checkpoint steps): what it holds so far
    survives a power loss, not only a killed process. A missing file is fine."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        return
    except OSError as e:
        raise write_error(Path(path), e) from None
    try:
        os.fsync(fd)
    except OSError as e:
        raise write_error(Path(path), e) from None
    finally:
        os.close(fd)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a .jsonl file; cut, garbled or non-object lines are skipped."""
    try:
        text = Path(path).read_bytes().decode("utf-8", "replace")
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def remove_temp_files(folder: str | os.PathLike) -> int:
    """Delete the temporary files of writes a crash interrupted (only ours: '.<name>.*.tmp')."""
    removed = 0
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        if _TMP_NAME.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def safe_name(name: str, limit: int = 120) -> str:
    """An item name that is safe as one file name inside an output folder: no separators,
    no leading dots, no control characters, valid UTF-8, bounded length."""
    text = os.fsencode(name).decode("utf-8", "replace") if isinstance(name, str) else str(name)
    text = re.sub(r"[\x00-\x1f\x7f/\\]", "_", text).lstrip(".").strip()
    return text[:limit] or "item"


def unique_names(names: list[str]) -> list[str]:
    """Item names as file names: safe (nothing may leave --out), distinct even on a
    case-insensitive file system, and never `grid` (render and sample write grid.png beside
    the items): 'a', 'A', 'a-1' -> 'a', 'A-1', 'a-1-1'."""
    taken, tries = {"grid"}, {}
    result = []
    for n in map(safe_name, names):
        k = tries.get(n.casefold(), 0)
        name = n if k == 0 else f"{n}-{k}"
        while name.casefold() in taken:
            k += 1
            name = f"{n}-{k}"
        tries[n.casefold()] = k + 1
        taken.add(name.casefold())
        result.append(name)
    return result


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
    except RecursionError:
        raise InputError(f"{path}: not readable JSON (nested too deeply)") from None
    except (OSError, ValueError) as e:  # ValueError: bad JSON, bad UTF-8, huge integers
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
    """float in [0, 1] -> uint8 (rounded; NaN, which would cast to an arbitrary byte, as
    black), a block of rows at a time: no full-size float temporaries (a 4096 x 4096 RGB
    render is 200 MB per float copy)."""
    if image.dtype == np.uint8:
        return image
    out = np.empty(image.shape, dtype=np.uint8)
    for r in range(0, image.shape[0], rows):
        block = np.nan_to_num(image[r:r + rows], nan=0.0)
        out[r:r + rows] = np.clip(block, 0.0, 1.0) * 255.0 + 0.5  # truncates
    return out


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """float [H, W, C] in [0, 1] (C = 1 or 3), or uint8, -> 8-bit PNG."""
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    atomic_write(path, iio.imwrite("<bytes>", image, extension=".png"))
