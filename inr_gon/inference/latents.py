"""Latent files, the one format every command reads and writes: safetensors with `latents [B, D]`
float32 (a local run's: code grids [B, h, w, D], D per input pixel) and the item names (a JSON
list) in the metadata. Readable with numpy alone: see
examples/onnx_render.py. `fit --whole` also writes `photos`: where each photo's tile latents
are and how its tiles lie (`PhotoTiles`), so `render --latents` puts the photos back together."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from inr_gon.errors import InputError
from inr_gon.io import load_tensors, save_tensors, unique_names
from inr_gon.limits import MAX_OBSERVE_SCALE
from inr_gon.run import MODEL_FILE, STATE_FILE, is_run


@dataclass(frozen=True)
class PhotoTiles:
    """Latents first .. first + len(ys) * len(xs) - 1 are the tiles of photo `name`, its own size
    (H, W) padded to `padded`, tiles of `tile` (h, w) at rows ys and columns xs (row-major).
    scale: 0 for a GON's tile latents; a local run's code grids were encoded for rendering at
    `scale` x (smaller tiles than the file's grids fill their corner, the rest zero)."""

    name: str
    size: tuple[int, int]
    padded: tuple[int, int]
    tile: tuple[int, int]
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    first: int
    scale: float = 0

    @property
    def count(self) -> int:
        return len(self.ys) * len(self.xs)


def save_latents(path: str | Path, names: list[str], z: torch.Tensor, run: str = "",
                 photos: list[PhotoTiles] | None = None) -> None:
    meta = {"names": json.dumps(names), "run": str(run)}
    if photos:
        meta["photos"] = json.dumps([asdict(p) for p in photos])
    save_tensors(path, {"latents": z.float()}, meta)


def load_latent_photos(path: str | Path, latent_dim: int
                       ) -> tuple[list[str], torch.Tensor, list[PhotoTiles] | None]:
    """`load_latents`, and the photos of a `fit --whole` file (None for another latents file)."""
    names, z, meta = _load(path, latent_dim)
    return names, z, _photo_tiles(path, meta.get("photos"), tuple(z.shape))


def _photo_tiles(path: str | Path, raw: str | None, shape: tuple[int, ...]) -> list[PhotoTiles] | None:
    """The photos record `raw` (JSON, from the metadata) of a latents file whose latents have
    `shape`: InputError when it does not fit them."""
    latents = shape[0]
    if raw is None:
        return None
    try:
        photos = [PhotoTiles(str(p["name"]), _pair(p["size"]), _pair(p["padded"]), _pair(p["tile"]),
                             _ints(p["ys"]), _ints(p["xs"]), int(p["first"]),
                             float(p.get("scale", 0)))
                  for p in json.loads(raw)]
    except (ValueError, TypeError, KeyError, RecursionError):
        photos = None
    ends = [p.first + p.count for p in photos or []]
    starts = [0] + ends[:-1]
    if not photos or ends[-1] != latents or any(p.first != start or _bad(p) or _off_grid(p, shape)
                                                 for p, start in zip(photos, starts)):
        raise InputError(f"{path}: its 'photos' record does not match its {latents} latents "
                         "(written by `inr-gon fit --whole --out`?)")
    return photos


def _pair(v) -> tuple[int, int]:
    h, w = (int(x) for x in v)
    return h, w


def _ints(v) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


def _bad(p: PhotoTiles) -> bool:
    """No tiles, tiles outside the padded photo, or a padded photo smaller than the photo."""
    return (min(*p.size, *p.tile) < 1 or p.padded[0] < max(p.size[0], p.tile[0])
            or p.padded[1] < max(p.size[1], p.tile[1]) or not p.ys or not p.xs
            or min(p.ys + p.xs) < 0 or max(p.ys) + p.tile[0] > p.padded[0]
            or max(p.xs) + p.tile[1] > p.padded[1] or not (p.scale == 0 or 1 <= p.scale <= MAX_OBSERVE_SCALE))


def _off_grid(p: PhotoTiles, shape: tuple[int, ...]) -> bool:
    """A local run's record (scale > 0) needs code grids [T, h, w, D] that hold its tiles; a
    GON's needs latents [T, D]."""
    if not p.scale:
        return len(shape) != 2
    return len(shape) != 4 or shape[1] < p.tile[0] or shape[2] < p.tile[1]


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
    return _load(path, latent_dim)[:2]


def _load(path: str | Path, latent_dim: int) -> tuple[list[str], torch.Tensor, dict[str, str]]:
    """`load_latents` and the file's metadata, from one read."""
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
    if z is None or z.dim() not in (2, 4) or z.shape[0] == 0 or not z.dtype.is_floating_point:
        raise InputError(f"{path}: no floating-point 'latents' tensor of shape [B, D] (a local "
                         f"run's: code grids [B, h, w, D]), B >= 1: {FORMAT}")
    if z.shape[-1] != latent_dim:
        raise InputError(f"{path}: latents have dimension {z.shape[-1]}, the run's is {latent_dim}")
    if not torch.isfinite(z).all():
        raise InputError(f"{path}: latents contain NaN or inf")
    try:
        names = json.loads(meta.get("names", "null"))
    except (ValueError, RecursionError):
        names = None
    if not isinstance(names, list) or len(names) != z.shape[0]:
        names = [f"latent_{i:04d}" for i in range(z.shape[0])]
    # Names from a file become output file names: unique_names makes them safe ones.
    return unique_names([str(n) for n in names]), z.float(), meta


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
