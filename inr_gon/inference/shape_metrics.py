"""Shape metrics: Chamfer distance, normal consistency, volumetric IoU.

Conventions (CONVENTION below says the same in words, for reports):
- everything in the normalised frame: each source mesh centred on its bounding box and
  scaled so its farthest vertex is at radius 0.9 (datasets/meshes.py);
- N points are sampled area-weighted on each surface; distances are exact point-to-surface
  distances to the other mesh (libigl AABB), not point-to-point distances between two
  samplings, so a mesh against itself scores exactly 0 and the figure has no sampling floor;
- chamfer_l1 = (mean d(pred -> truth) + mean d(truth -> pred)) / 2  (Occupancy Networks'
  Chamfer-L1); chamfer_l2 = mean d^2(pred -> truth) + mean d^2(truth -> pred)  (DeepSDF's
  sum of mean squared distances);
- normal consistency = mean over both directions of |n(p) . n(closest point)|, face normals;
- IoU = |inside both| / |inside either| over uniform points in the cube [-1, 1]^3;
- components: connected bodies (faces joined through shared vertices); a reconstruction is
  called watertight only when it is closed and has no more components than its reference.
"""

from __future__ import annotations

import numpy as np

from inr_gon.datasets.signed_distance import morton_order

CONVENTION = ("normalised frame (source mesh centred, farthest vertex at radius 0.9); "
              "point-to-surface distances from N area-weighted samples of each surface; "
              "chamfer_l1 = (mean d(pred->truth) + mean d(truth->pred)) / 2; "
              "chamfer_l2 = mean d^2(pred->truth) + mean d^2(truth->pred); "
              "normal_consistency = mean |n . n_closest| both ways; "
              "iou over uniform points in [-1, 1]^3")


def _to_surface(points: np.ndarray, mesh) -> tuple[np.ndarray, np.ndarray]:
    """(distance [N], closest face [N]) from points to mesh."""
    import igl


    order = morton_order(points)
    sq, face, _ = igl.point_mesh_squared_distance(
        np.ascontiguousarray(points[order], dtype=np.float64),
        np.ascontiguousarray(mesh.vertices, dtype=np.float64),
        np.ascontiguousarray(mesh.faces, dtype=np.int64))
    dist, closest = np.empty(len(points)), np.empty(len(points), dtype=np.int64)
    dist[order], closest[order] = np.sqrt(np.maximum(sq, 0.0)), face
    return dist, closest


def surface_metrics(pred, truth, n: int = 30_000, seed: int = 0) -> dict[str, float]:
    """Chamfer (L1 and L2 conventions) and normal consistency between two trimeshes."""
    import trimesh

    pa, fa = trimesh.sample.sample_surface(pred, n, seed=seed)
    pb, fb = trimesh.sample.sample_surface(truth, n, seed=seed + 1)
    d_ab, c_ab = _to_surface(pa, truth)
    d_ba, c_ba = _to_surface(pb, pred)
    na, nb = pred.face_normals, truth.face_normals
    nc_ab = np.abs((na[fa] * nb[c_ab]).sum(-1)).mean()
    nc_ba = np.abs((nb[fb] * na[c_ba]).sum(-1)).mean()
    return {"chamfer_l1": float((d_ab.mean() + d_ba.mean()) / 2),
            "chamfer_l2": float((d_ab**2).mean() + (d_ba**2).mean()),
            "normal_consistency": float((nc_ab + nc_ba) / 2)}


def iou(inside_a: np.ndarray, inside_b: np.ndarray) -> float:
    """Intersection over union of two occupancy masks (1.0 when both are empty)."""
    union = np.logical_or(inside_a, inside_b).sum()
    return float(np.logical_and(inside_a, inside_b).sum() / union) if union else 1.0


def mesh_parts(mesh, truth) -> dict:
    """Connected components of a reconstruction and of its reference, and whether the
    reconstruction is watertight: closed (every edge on two faces, so every component is
    closed) and not fallen apart (no more components than the reference)."""
    parts, ref = components(mesh), components(truth)
    return {"components": parts, "components_ref": ref,
            "watertight": bool(mesh is not None and mesh.is_watertight and parts <= ref)}


def components(mesh) -> int:
    """Connected components (bodies joined by shared vertices) of a trimesh; 0 for None."""
    return 0 if mesh is None or len(mesh.faces) == 0 else int(mesh.body_count)
