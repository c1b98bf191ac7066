"""Shaded pictures of meshes with numpy alone (no display, no OpenGL): dense surface splats.

The surface is sampled area-weighted at several points per pixel, each sample is projected
orthographically from a fixed three-quarter view and the nearest sample of each pixel wins
(a z-buffer); its face normal gives a two-sided Lambert shade. With
SAMPLES_PER_PIXEL samples per pixel of surface area no pixel a surface covers stays empty,
however the surface is tilted (tilting only packs more samples into fewer pixels).
"""

from __future__ import annotations

import numpy as np

SAMPLES_PER_PIXEL = 4
MAX_LAYERS = 3  # samples are capped at this many surface layers' worth per pixel
LIGHT = np.array([0.4, 0.5, 0.77])  # towards the light, view frame (x right, y up, z to viewer)
BASE = np.array([0.55, 0.68, 0.85])  # surface colour


def view_rotation(azimuth: float = 35.0, elevation: float = 25.0) -> np.ndarray:
    """World -> view rotation [3, 3]: turn about the world z axis, then tilt towards the viewer."""
    a, e = np.radians(azimuth), np.radians(elevation)
    turn = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    # world z up -> view y up; world -y -> towards the viewer (view z), tilted by the elevation
    up = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    tilt = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return tilt @ up @ turn


def render_mesh(mesh, size: int = 256, extent: float = 1.0) -> np.ndarray:
    """A shaded view of mesh (coordinates within [-extent, extent]^3): float32 [size, size, 3]
    in [0, 1] on white. mesh None or empty gives a light grey square."""
    img = np.ones((size, size, 3), dtype=np.float32)
    if mesh is None or len(mesh.faces) == 0:
        return img * 0.9
    import trimesh

    pixel = 2.0 * extent / size
    # A wrinkled surface (an untrained network's) can have a huge area: cap the samples at a
    # few full-frame layers, which costs at worst some holes in such a picture.
    n = int(min(MAX_LAYERS * SAMPLES_PER_PIXEL * size**2,
                max(1000, SAMPLES_PER_PIXEL * mesh.area / pixel**2)))
    points, face = trimesh.sample.sample_surface(mesh, n, seed=0)
    rot = view_rotation()
    p = points @ rot.T
    normals = mesh.face_normals[face] @ rot.T
    col = ((p[:, 0] + extent) / pixel).astype(np.int64)
    row = ((extent - p[:, 1]) / pixel).astype(np.int64)
    keep = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    pix, depth, normals = row[keep] * size + col[keep], p[keep, 2], normals[keep]
    zbuf = np.full(size * size, -np.inf)
    np.maximum.at(zbuf, pix, depth)  # nearest = largest view z
    front = depth == zbuf[pix]
    shade = 0.25 + 0.75 * np.abs(normals[front] @ LIGHT)
    img.reshape(-1, 3)[pix[front]] = np.clip(shade[:, None] * BASE, 0, 1)
    return img
