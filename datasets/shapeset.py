"""ShapeSet: sampled SDF points of a set of shapes, and `load_shapes` for any SDF data spec."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from inr_gon.errors import InputError
from inr_gon.progress import Progress

from .builtin import PREFIX, builtin_modality, parse_builtin
from .meshes import MeshFile, UnreadableMesh, load_mesh, mesh_files, normalise, usable
from .sampling import Sampling, sample_mesh
from .sdf_cache import entry_path, file_digest, load_entry, save_entry
from .shapes3d import COUNT, load_shapes3d
from .signed_distance import is_closed_body, signed_distance


@dataclass
class ShapeSet:
    """Shapes in the normalised frame (original = normalised / scale + center)."""

    names: list[str]
    points: np.ndarray  # [S, P, 3] float32 in [-1, 1]^3
    sdf: np.ndarray  # [S, P] float32, negative inside
    centers: np.ndarray  # [S, 3]
    scales: np.ndarray  # [S]
    source: str
    kind: str  # builtin | folder | file
    surface_fn: Callable[[int], object]  # item -> trimesh.Trimesh (normalised)
    sdf_fn: Callable[[int, np.ndarray], np.ndarray]  # item, points [N, 3] -> true sdf [N]

    def surface(self, i: int):
        """The source surface of item i, normalised (a trimesh.Trimesh)."""
        return self.surface_fn(i)

    def true_sdf(self, i: int, points: np.ndarray) -> np.ndarray:
        return self.sdf_fn(i, points)

    def summary(self) -> dict:
        return {"source": self.source, "kind": self.kind, "count": len(self.names),
                "modality": "sdf", "points_per_shape": int(self.points.shape[1])}


def load_shapes(spec: str | os.PathLike, s: Sampling, quiet: bool = False) -> ShapeSet:
    """builtin:NAME, a mesh file or a folder of meshes -> ShapeSet (sampling cached on disk)."""
    text = os.fspath(spec)
    if text.startswith(PREFIX):
        if builtin_modality(text) != "sdf":
            raise InputError(f"'{text}' is image data, not shapes")

        count = parse_builtin(text)[1] or COUNT
        check_memory(text, count, s)
        with Progress("generating shapes", count, unit="shapes", quiet=quiet, transient=True) as bar:
            return ShapeSet(**load_shapes3d(text, s, progress=lambda: bar.update(advance=1)))
    files = mesh_files(text)
    check_memory(text, len(files), s)
    with Progress("sampling meshes", len(files), unit="meshes", fields=("cached",), quiet=quiet,
                  transient=True) as bar:
        hits = [0]

        def check(f: MeshFile):
            entry, hit = _sample_file(f, s)
            hits[0] += hit
            bar.update(advance=1, cached=hits[0])
            return f, entry

        good = usable(files, text, check)
    return _from_entries(text, good)


def check_memory(source: str, count: int, s: Sampling) -> None:
    """All samples are held in memory (float32 points [S, P, 3] and sdf [S, P]): refuse at once
    what cannot fit, rather than sample for hours and fail at the end."""
    need = count * s.count * 16
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this system: nothing to compare with
        return
    if need > total:
        raise InputError(f"{source}: {count} shapes x {s.count} points need {need / 2**30:,.0f} GiB of "
                         f"samples, more than this machine's {total / 2**30:,.0f} GiB of memory; "
                         "use fewer shapes or a smaller --sdf-samples")


def _sample_file(f: MeshFile, s: Sampling) -> tuple[dict, bool]:
    if not f.path.exists():  # a dangling link or a link loop
        raise UnreadableMesh("is a link to nothing (no such file)")
    if not f.path.is_file():  # a FIFO or a device: reading it would block or never end
        raise UnreadableMesh("is not a regular file")
    try:
        digest = file_digest(f.path)
    except OSError as e:
        raise UnreadableMesh(f"cannot be read ({e.strerror or e})") from None
    path = entry_path(digest, s)
    entry = load_entry(path)
    if entry is not None:
        return entry, True
    mesh, center, scale = normalise(load_mesh(f.path))
    points, sdf = sample_mesh(mesh, s, seed=int(digest[:8], 16))
    entry = {"points": points, "sdf": sdf, "center": np.asarray(center, dtype=np.float64),
             "scale": np.asarray([scale], dtype=np.float64)}
    save_entry(path, entry, f.path.name)
    return entry, False


def _from_entries(source: str, good: list[tuple[MeshFile, dict]]) -> ShapeSet:
    paths = [str(f.path) for f, _ in good]

    def true_sdf(i: int, points: np.ndarray) -> np.ndarray:
        mesh = normalised_mesh(paths[i])
        return signed_distance(mesh.vertices, mesh.faces, points, closed=is_closed_body(mesh))

    kind = "file" if len(good) == 1 and os.path.isfile(source) else "folder"
    return ShapeSet(
        names=[f.name for f, _ in good], points=np.stack([e["points"] for _, e in good]),
        sdf=np.stack([e["sdf"] for _, e in good]), centers=np.stack([e["center"] for _, e in good]),
        scales=np.concatenate([e["scale"] for _, e in good]), source=source, kind=kind,
        surface_fn=lambda i: normalised_mesh(paths[i]), sdf_fn=true_sdf)


@lru_cache(maxsize=4)
def normalised_mesh(path: str):
    """The file's mesh in the normalised frame (kept for a few calls: eval asks twice)."""
    return normalise(load_mesh(path))[0]
