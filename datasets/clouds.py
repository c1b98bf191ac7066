"""Point clouds and scans -> approximate SDF samples in the normalised frame, to fit latents.

Readers: `.xyz` is whitespace text, one point a line, `x y z` or `x y z nx ny nz` (`#`
comments); `.ply` and `.obj` files with vertices but no faces are clouds (trimesh reads PLY,
normals from its `nx ny nz` vertex properties; OBJ `v`/`vn` lines are read here, normals
paired with vertices in order when there are as many). A file with faces is a mesh and goes
through datasets/meshes.py. Clouds are normalised exactly as meshes are (normalising_frame),
so a scan of a mesh lands where the mesh would.

Samples (as many as the run's Sampling, in its groups, so a cloud is fitted like a mesh):
- with normals, the standard oriented-cloud construction: the first noise group lies on the
  normal lines through cloud points, half on the cloud (target 0), half at t ~ N(0, sigma)
  along the normal (target t, the distance to the local tangent plane). The other groups
  (wider noise, uniform in the cube) get the distance to the nearest cloud point, signed by
  the oriented cloud's fast winding number (Barill et al. 2018, libigl). Why far targets at
  all: a GON latent is a sum of residuals, and near-surface targets alone carry little of the
  shape (datasets/sampling.py); the learned prior was trained on exact far distances too.
- without normals: normals are estimated first (normals.py: PCA of each point's neighbourhood,
  signs made consistent along a spanning tree and turned outward, Hoppe et al. 1992), then the
  same. (The construction before, the cloud points and a free-space prior outside the convex
  hull, left the inside to the network's prior: held-out scans fitted 0.05-0.16 IoU worse,
  docs/shapes.md.)
Distances to the nearest cloud point overestimate the distance to the surface by at most
about half the point spacing; far from the cloud that is a small relative error.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inr_gon.errors import InputError

from .meshes import normalising_frame
from .normals import estimate_normals
from .sampling import Sampling, sample_points
from .shapeset import ShapeSet

CLOUD_EXTS = (".xyz",)  # always clouds; .ply and .obj are clouds when they have no faces
MAYBE_CLOUD_EXTS = (".ply", ".obj")
MIN_POINTS = 64  # fewer cannot pin down a surface the run's prior has not seen
AREA_NEIGHBOURS = 8  # a point's area: the disc to its k-th neighbour shared by k + 1 points
FORMAT = "want a point cloud: .xyz lines 'x y z [nx ny nz]', or a .ply/.obj with vertices"


@dataclass
class Cloud:
    points: np.ndarray  # [N, 3] float64
    normals: np.ndarray | None  # [N, 3] unit vectors, or None


def is_cloud_file(spec: str | os.PathLike) -> bool:
    """True for an existing .xyz file, or a .ply/.obj file that declares no faces."""
    path = Path(spec)
    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in CLOUD_EXTS + MAYBE_CLOUD_EXTS:
        return False
    if suffix in CLOUD_EXTS:
        return True
    try:
        if suffix == ".ply":
            return _ply_faces(path) == 0
        text = path.read_bytes().decode("latin-1")
    except OSError:
        return False
    lines = text.splitlines()
    return any(x.startswith("v ") for x in lines) and not any(x.startswith("f ") for x in lines)


def _ply_faces(path: Path) -> int | None:
    """How many faces a PLY header declares (0 when no face element); None if not a PLY."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.startswith(b"ply"):
        return None
    for line in head.split(b"end_header")[0].decode("latin-1").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[:2] == ["element", "face"]:
            return int(parts[2]) if parts[2].isdigit() else None
    return 0


def load_cloud(path: str | os.PathLike) -> Cloud:
    """A cloud file -> Cloud in the file's frame; InputError (one line naming the file) when it
    is not a usable cloud: unreadable, under MIN_POINTS points, non-finite coordinates or
    normals, zero-length normals, or every point the same."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".xyz":
            points, normals = _read_xyz(path)
        elif suffix == ".obj":
            points, normals = _read_obj(path)
        elif suffix == ".ply":
            points, normals = _read_ply(path)
        else:
            raise InputError(f"{path}: {FORMAT}")
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e})") from None
    return _checked(path, points, normals)


def _read_xyz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:  # an empty file: numpy warns and gives 0 rows, which _checked reports
        with np.errstate(over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rows = np.loadtxt(path, dtype=np.float64, comments="#", ndmin=2)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: {FORMAT} ({str(e)[:80]})") from None
    if rows.shape[0] and rows.shape[1] not in (3, 6):
        raise InputError(f"{path}: lines of {rows.shape[1]} numbers; {FORMAT}")
    return rows[:, :3], (rows[:, 3:6] if rows.shape[1] == 6 else None)


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    verts, normals = [], []
    for line in path.read_bytes().decode("latin-1").splitlines():
        if line.startswith("v "):
            verts.append(line.split()[1:4])  # `v x y z [r g b]`: colours ignored
        elif line.startswith("vn "):
            normals.append(line.split()[1:4])
    try:
        with np.errstate(over="ignore"):
            v = np.array(verts, dtype=np.float64).reshape(-1, 3)
            n = np.array(normals, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise InputError(f"{path}: a 'v' or 'vn' line without 3 numbers; {FORMAT}") from None
    return v, (n if len(n) == len(v) and len(v) else None)


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    import trimesh

    try:
        with np.errstate(over="ignore", invalid="ignore"):
            cloud = trimesh.load(str(path), file_type="ply", process=False)
    except Exception as e:  # noqa: BLE001 - parsers raise anything on junk input
        raise InputError(f"{path}: does not parse as PLY ({type(e).__name__}: {e})"[:200]) from None
    if not isinstance(cloud, trimesh.PointCloud):
        raise InputError(f"{path}: {FORMAT} (it holds {type(cloud).__name__})")
    # trimesh keeps the vertex properties: a dict (ASCII) or a structured array (binary)
    data = cloud.metadata.get("_ply_raw", {}).get("vertex", {}).get("data", {})
    fields = data.dtype.names or () if isinstance(data, np.ndarray) else tuple(data)
    keys = ("nx", "ny", "nz")
    normals = (np.stack([np.asarray(data[k], np.float64).ravel() for k in keys], -1)
               if all(k in fields for k in keys) else None)
    return np.asarray(cloud.vertices, dtype=np.float64), normals


def _checked(path: Path, points: np.ndarray, normals: np.ndarray | None) -> Cloud:
    n = len(points)
    if n < MIN_POINTS:
        raise InputError(f"{path}: a point cloud of {n} points; fitting needs at least {MIN_POINTS}")
    bad = int((~np.isfinite(points).all(1)).sum())
    if bad:
        raise InputError(f"{path}: {bad} of {n} points have NaN or infinite coordinates")
    if (points == points[0]).all():
        raise InputError(f"{path}: all {n} points are the same point: no surface to fit")
    if normals is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            length = np.linalg.norm(normals, axis=1)
        bad = int((~np.isfinite(length) | (length < 1e-12)).sum())
        if bad:
            raise InputError(f"{path}: {bad} of {n} normals are NaN, infinite or zero-length")
        normals = normals / length[:, None]
    return Cloud(points, normals)


def _nearest(cloud: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Distance from each query [M, 3] to its nearest cloud point [N, 3]: [M]. libigl's AABB
    tree over one degenerate triangle per point (a point's triangle is the point)."""
    import igl

    f = np.repeat(np.arange(len(cloud), dtype=np.int64)[:, None], 3, axis=1)
    tree = igl.AABB()
    tree.init(cloud, f)
    return np.sqrt(tree.squared_distance(cloud, f, np.ascontiguousarray(queries))[0])


def _point_areas(points: np.ndarray) -> np.ndarray:
    """Each point's share of the surface [N]: the disc reaching its k-th neighbour / (k + 1)."""
    import igl

    k = min(AREA_NEIGHBOURS, len(points) - 1)
    tree, children, centres, widths = igl.octree(points)
    near = igl.knn(points, points, k + 1, tree, children, centres, widths)  # itself first
    r = np.linalg.norm(points[near[:, -1]] - points, axis=1)
    return np.pi * r**2 / (k + 1)


def sample_cloud(cloud: Cloud, s: Sampling, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A normalised cloud -> (points float32 [count, 3], approximate sdf float32 [count]), in the
    groups of s (see the module note); a cloud without normals gets estimated ones."""
    rng = np.random.default_rng(seed)
    p = cloud.points
    normals = cloud.normals if cloud.normals is not None else estimate_normals(p)
    n_uniform, per = s.groups()
    pick = rng.integers(len(p), size=s.count - n_uniform)
    far = sample_points(p[pick], s, rng)[per[0]:]  # wider noise groups, then uniform
    idx, t = pick[:per[0]], rng.normal(0.0, s.noise[0], per[0])
    t[: per[0] // 2] = 0.0  # half exactly on the cloud: the zero level set
    near = p[idx] + t[:, None] * normals[idx]
    w = _winding(p, normals, far)
    dist = _nearest(p, far)
    points = np.concatenate([near, far])
    sdf = np.concatenate([t, np.where(w > 0.5, -dist, dist)])
    return np.clip(points, -1.0, 1.0).astype(np.float32), sdf.astype(np.float32)


def _winding(points: np.ndarray, normals: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The oriented cloud's generalised winding number at queries [M]: ~1 inside, ~0 outside."""
    import igl

    areas = _point_areas(points)
    return igl.fast_winding_number(points, normals, areas, np.ascontiguousarray(queries))


def load_cloud_set(spec: str | os.PathLike, s: Sampling) -> ShapeSet:
    """One cloud file -> a ShapeSet of one shape (normalised as meshes are); it has no source
    surface, so it can be fitted and meshed but not scored."""
    path = Path(spec)
    cloud = load_cloud(path)
    center, scale = normalising_frame(cloud.points)
    points, sdf = sample_cloud(Cloud((cloud.points - center) * scale, cloud.normals), s)

    def no_surface(*_):
        raise InputError(f"{path} is a point cloud: it has no surface to score against")

    return ShapeSet(names=[path.stem], points=points[None], sdf=sdf[None],
                    centers=np.asarray(center, dtype=np.float64)[None],
                    scales=np.asarray([scale], dtype=np.float64), source=str(path), kind="cloud",
                    surface_fn=no_surface, sdf_fn=no_surface)
