"""Shaded pictures of meshes with numpy alone (no display, no OpenGL): a depth-buffer
triangle rasteriser.

Each triangle is projected orthographically from a fixed three-quarter view; every pixel
centre inside its projection (edges included) gets a candidate with the depth interpolated
from the corners, and the nearest candidate of each pixel wins (a z-buffer). Its face normal
gives a two-sided Lambert shade. Why a rasteriser and not surface splats (this module's
first version): the projected triangles of a closed surface tile its silhouette, so every
pixel centre inside it lies in some triangle and no pinhole can appear, whatever the
sampling luck; splats left white single-pixel holes. Cost: one candidate per covered pixel
per layer, vectorised over triangles grouped by bounding-box size (~0.1-0.5 s at 256 px).
"""

from __future__ import annotations

import numpy as np

LIGHT = np.array([0.4, 0.5, 0.77])  # towards the light, view frame (x right, y up, z to viewer)
BASE = np.array([0.55, 0.68, 0.85])  # surface colour
CHUNK = 1 << 22  # candidate pixels made at once (~100 MiB of temporaries)
EDGE_EPS = 1e-9  # barycentric slack: a pixel centre on a shared edge belongs to both triangles


def view_rotation(azimuth: float = 35.0, elevation: float = 25.0) -> np.ndarray:
    """World -> view rotation [3, 3]: turn about the world y axis (up in .obj and glTF files,
    the usual mesh sources), then tilt so the viewer looks down by `elevation` degrees."""
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return tilt @ turn


def _candidates(x: np.ndarray, y: np.ndarray, z: np.ndarray, lo: np.ndarray, k: int, size: int):
    """Pixels inside triangles whose bounding box fits a k x k window from lo [T, 2] (col, row).
    x, y, z: [T, 3] corner positions in pixel units (pixel centres at integers), view depth.
    -> (triangle index [M], flat pixel [M], depth [M])."""
    off = np.stack(np.meshgrid(np.arange(k), np.arange(k), indexing="xy"), -1).reshape(-1, 2)
    px = lo[:, None, 0] + off[None, :, 0]  # [T, k*k]
    py = lo[:, None, 1] + off[None, :, 1]
    # barycentric weights of each pixel centre: w_i = edge function opposite corner i / area
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    w = []
    for i in range(3):
        j, m = (i + 1) % 3, (i + 2) % 3
        e = (x[:, m, None] - x[:, j, None]) * (py - y[:, j, None]) \
            - (y[:, m, None] - y[:, j, None]) * (px - x[:, j, None])
        w.append(e / area[:, None])
    inside = (w[0] >= -EDGE_EPS) & (w[1] >= -EDGE_EPS) & (w[2] >= -EDGE_EPS)
    inside &= (px >= 0) & (px < size) & (py >= 0) & (py < size)
    t, c = np.nonzero(inside)
    depth = w[0][t, c] * z[t, 0] + w[1][t, c] * z[t, 1] + w[2][t, c] * z[t, 2]
    return t, py[t, c] * size + px[t, c], depth


def render_mesh(mesh, size: int = 256, extent: float = 1.0) -> np.ndarray:
    """A shaded view of mesh (coordinates within [-extent, extent]^3): float32 [size, size, 3]
    in [0, 1] on white. mesh None or empty gives a light grey square."""
    img = np.ones((size, size, 3), dtype=np.float32)
    if mesh is None or len(mesh.faces) == 0:
        return img * 0.9
    rot = view_rotation()
    v = np.asarray(mesh.vertices, dtype=np.float64) @ rot.T  # [V, 3] view frame
    pixel = 2.0 * extent / size
    col, row = (v[:, 0] + extent) / pixel - 0.5, (extent - v[:, 1]) / pixel - 0.5
    f = np.asarray(mesh.faces)
    x, y, z = col[f], row[f], v[f, 2]  # [F, 3] each
    normals = np.asarray(mesh.face_normals) @ rot.T
    shade = 0.25 + 0.75 * np.abs(normals @ LIGHT)  # [F]
    lo = np.ceil(np.stack([x.min(1), y.min(1)], -1)).astype(np.int64)  # first pixel centre
    hi = np.floor(np.stack([x.max(1), y.max(1)], -1)).astype(np.int64)
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    span = (hi - lo).max(1) + 1  # bounding-box side in pixel centres; <= 0: covers none
    keep = (span > 0) & (np.abs(area) > 1e-12) & (hi >= 0).all(1) & (lo < size).all(1)
    tri, pix, depth = [], [], []
    k_of = 1 << np.ceil(np.log2(np.maximum(span, 1))).astype(np.int64)  # power-of-two windows
    for k in np.unique(k_of[keep]):
        ids = np.nonzero(keep & (k_of == k))[0]
        per = max(1, CHUNK // int(k * k))
        for s in range(0, len(ids), per):
            i = ids[s:s + per]
            t, p, d = _candidates(x[i], y[i], z[i], lo[i], int(k), size)
            tri.append(i[t]), pix.append(p), depth.append(d)
    tri, pix, depth = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (tri, pix, depth))
    if len(pix) == 0:  # no triangle covers a pixel centre (a speck, or all outside the frame)
        return img
    order = np.lexsort((-depth, pix))  # per pixel, nearest (largest view z) first
    first = order[np.r_[True, pix[order][1:] != pix[order][:-1]]]
    img.reshape(-1, 3)[pix[first]] = np.clip(shade[tri[first], None] * BASE, 0, 1)
    return img
