"""Mesh files -> clean triangle meshes in the normalised frame.

Loading: trimesh reads .obj .ply .stl .off .glb .gltf; scenes are flattened with their node
transforms applied, duplicate vertices merged, degenerate faces dropped. A file that does
not parse, has no faces or has non-finite vertices is refused (UnreadableMesh); in a folder
such files are skipped with one warning naming them, and only a folder with no usable mesh
is an error.

Normalised frame: each mesh is centred on its bounding-box centre and scaled so its
farthest vertex is at RADIUS (inside the unit sphere, with a margin so the surface never
touches the faces of the cube [-1, 1]^3, where marching cubes would leave it open).
`original = normalised / scale + center` puts results back in the file's frame.
"""

from __future__ import annotations

import os
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

    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)  # keep NaNs to report them
    except Exception as e:  # noqa: BLE001 - parsers raise anything on junk input
        raise UnreadableMesh(f"does not parse as a mesh ({type(e).__name__}: {e})"[:200]) from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise UnreadableMesh("has no triangle faces")
    if not np.isfinite(mesh.vertices).all():
        raise UnreadableMesh("has non-finite (NaN or infinite) vertex coordinates")
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0 or mesh.area <= 0:
        raise UnreadableMesh("has only degenerate (zero-area) faces")
    if mesh.is_watertight:
        mesh.fix_normals()  # consistent outward winding, so the pseudonormal sign is exact
    return mesh


def normalise(mesh) -> tuple[object, np.ndarray, float]:
    """(mesh in the normalised frame, center [3], scale): normalised = (x - center) * scale."""
    lo, hi = mesh.bounds
    center = (lo + hi) / 2.0
    radius = float(np.linalg.norm(mesh.vertices - center, axis=1).max())
    scale = RADIUS / radius if radius > 0 else 1.0
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
