"""Mesh files -> clean triangle meshes in the normalised frame.

Loading: trimesh reads .obj .ply .stl .off .glb .gltf; scenes are flattened with their node
transforms applied, duplicate vertices merged, degenerate faces dropped. A file that does
not parse, has no faces, has non-finite vertices or face indices outside its vertices is
refused (UnreadableMesh); in a folder such files are skipped with one warning naming them,
and only a folder with no usable mesh is an error. Geometry only: materials and textures
are never read, and the buffers a .gltf/.glb names are read only from beside the file
(never a URL, an absolute path or `..`), whatever the installed trimesh would allow.

Normalised frame: each mesh is centred on its bounding-box centre and scaled so its
farthest vertex is at RADIUS (inside the unit sphere, with a margin so the surface never
touches the faces of the cube [-1, 1]^3, where marching cubes would leave it open).
`original = normalised / scale + center` puts results back in the file's frame.
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inr_gon.errors import InputError, warn

from .images import IMAGE_EXTS, MESH_EXTS, find_files

RADIUS = 0.9


class UnreadableMesh(Exception):
    """A mesh file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class MeshFile:
    path: Path
    name: str  # relative to the folder given, without extension


def load_mesh(path: str | os.PathLike):
    """One file -> trimesh.Trimesh (scene flattened, vertices merged); UnreadableMesh if bad."""
    import trimesh

    path = Path(path)
    source, kind = _source(path)
    try:  # a value beyond float32 in a float32 field is read as inf, reported below, not printed
        with np.errstate(over="ignore", invalid="ignore"):
            mesh = trimesh.load(source, file_type=kind, force="mesh", process=False,  # keep NaNs
                                skip_materials=True, resolver=_beside(path))
    except UnreadableMesh:
        raise
    except ImportError:  # trimesh guesses a text file's encoding with an optional package
        raise UnreadableMesh("is neither a binary mesh nor UTF-8 text") from None
    except Exception as e:  # noqa: BLE001 - parsers raise anything on junk input
        raise UnreadableMesh(f"does not parse as a mesh ({type(e).__name__}: {e})"[:200]) from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise UnreadableMesh("has no triangle faces (a point cloud? `fit` and `mesh` take "
                             "clouds; training and `eval` need meshes)")
    if not np.isfinite(mesh.vertices).all():
        raise UnreadableMesh("has non-finite (NaN or infinite) vertex coordinates")
    if mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.vertices):
        raise UnreadableMesh(f"has face indices outside its {len(mesh.vertices)} vertices")
    # Clean in a unit frame: trimesh merges vertices on a fixed absolute grid (1e-8), which at
    # coordinates of 1e30 overflows its integer keys and merges unrelated vertices.
    center, size = _frame(mesh.vertices)
    if size == 0:
        raise UnreadableMesh("has only degenerate (zero-area) faces")
    mesh.vertices = (mesh.vertices - center) / size
    # numpy would print a RuntimeWarning where trimesh divides by a zero volume (a closed but
    # flat mesh: a double-sided sheet); the checks below judge the result instead
    with np.errstate(divide="ignore", invalid="ignore"):
        mesh.merge_vertices()
        mesh.update_faces(mesh.nondegenerate_faces())
        mesh.remove_unreferenced_vertices()
        if len(mesh.faces) == 0 or mesh.area <= 0:
            raise UnreadableMesh("has only degenerate (zero-area) faces")
        if mesh.is_watertight:
            mesh.fix_normals()  # consistent outward winding, so the pseudonormal sign is exact
    mesh.vertices = mesh.vertices * size + center
    return mesh


TEXT_ONLY = (".obj", ".off")  # ASCII grammars: other bytes can only be in comments and names


def _source(path: Path):
    """(what trimesh.load reads, file type or None). An .obj/.off that is not UTF-8 (a Latin-1
    comment or name) is handed over decoded as Latin-1, which cannot fail."""
    if path.suffix.lower() == ".gltf":  # else trimesh falls back to reading a `model.gltf`
        try:
            json.loads(path.read_bytes())
        except (ValueError, RecursionError):
            raise UnreadableMesh("is not glTF (JSON text)") from None
    if path.suffix.lower() in TEXT_ONLY:
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return io.StringIO(data.decode("latin-1")), path.suffix.lower()[1:]
    return str(path), None


URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # http:, file:, ... (data: URIs never get here)


def _beside(path: Path):
    """A trimesh resolver that reads only regular files in the folder of `path`."""
    from trimesh.resolvers import FilePathResolver

    class Beside(FilePathResolver):
        def get(self, name: str) -> bytes:
            root = Path(self.parent).resolve()
            target = (root / name.strip()).resolve()
            shown = name if len(name) <= 80 else name[:77] + "..."
            if URL.match(name.strip()) or not target.is_relative_to(root):
                raise UnreadableMesh(f"refers to '{shown}', which is not a file beside it "
                                     "(inr-gon never downloads or reads outside the folder)")
            if not target.is_file():  # missing, or a FIFO that would block the read
                raise UnreadableMesh(f"refers to '{shown}', which is not a file beside it")
            return target.read_bytes()

        def namespaced(self, namespace: str):
            return Beside(os.path.join(self.parent, namespace))

    return Beside(str(path))


def _frame(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(bounding-box centre, largest |coordinate - centre|), computed without overflow."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    center = lo / 2 + hi / 2
    return center, float(np.abs(vertices - center).max())


def normalising_frame(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(center [3], scale) putting vertices [N, 3] in the normalised frame (bounding-box centre
    at 0, farthest vertex at RADIUS): normalised = (x - center) * scale. Meshes and point
    clouds (datasets/clouds.py) share it, so a scan lands where its mesh would."""
    center, size = _frame(vertices)
    # the norm in units of `size`: squares of coordinates near 1e308 would overflow
    radius = size * float(np.linalg.norm((vertices - center) / size, axis=1).max()) if size else 0.0
    return center, RADIUS / radius if radius > 0 else 1.0


def normalise(mesh) -> tuple[object, np.ndarray, float]:
    """(mesh in the normalised frame, center [3], scale): normalised = (x - center) * scale."""
    center, scale = normalising_frame(mesh.vertices)
    out = mesh.copy()
    out.vertices = (mesh.vertices - center) * scale
    return out, center, scale


def to_original(vertices: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
    return vertices / scale + center


def mesh_files(spec: str | os.PathLike) -> list[MeshFile]:
    """A mesh file or a folder of them (recursive, sorted) -> MeshFile list; InputError if none
    or if the folder mixes images and meshes."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"no such file or folder: {spec}")
    if path.is_file():
        if path.suffix.lower() not in MESH_EXTS:
            raise InputError(f"{spec}: not a mesh file (want {' '.join(MESH_EXTS)})")
        return [MeshFile(path, path.stem)]
    meshes, images = find_files(path, MESH_EXTS), find_files(path, IMAGE_EXTS)
    if meshes and images:
        raise InputError(f"{spec} holds both images ({len(images)}) and meshes ({len(meshes)}); "
                         "put them in separate folders")
    if not meshes:
        raise InputError(f"no meshes found in {spec} (looked for {' '.join(MESH_EXTS)})")
    return [MeshFile(p, p.relative_to(path).with_suffix("").as_posix()) for p in meshes]


def usable(files: list[MeshFile], source: str, check) -> list:
    """Apply check(file) to each; files raising UnreadableMesh are skipped with one warning,
    and none usable is an InputError naming the first reason."""
    good, bad = [], []
    for f in files:
        try:
            good.append(check(f))
        except UnreadableMesh as e:
            bad.append((f, str(e)))
    if not good:
        f, why = bad[0]
        if len(bad) == 1:
            raise InputError(f"mesh {f.path} {why}")
        raise InputError(f"none of the {len(bad)} mesh files in {source} is usable "
                         f"(e.g. {f.path} {why})")
    if bad:
        shown = "; ".join(f"{f.path} {why}" for f, why in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warn(f"skipped {len(bad)} unusable mesh file{'s' if len(bad) > 1 else ''} in {source}: "
             f"{shown}{more}")
    return good
