"""Normals of unoriented clouds (datasets/normals.py): PCA directions, signs made consistent
along the spanning tree, each connected part facing out."""

import numpy as np
import pytest
import trimesh

from inr_gon.datasets.normals import estimate_normals


def sampled(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    points, faces = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return points, mesh.face_normals[faces]


@pytest.mark.parametrize("mesh", [
    trimesh.creation.torus(0.6, 0.25, major_sections=48, minor_sections=24),
    trimesh.creation.box((1.0, 0.6, 0.3)),
    trimesh.creation.capsule(1.0, 0.3),
], ids=["torus", "box", "capsule"])
def test_estimated_normals_match_the_surface_and_face_out(mesh):
    points, truth = sampled(mesh, 3000)
    normals = estimate_normals(points)
    assert normals.shape == points.shape and np.allclose(np.linalg.norm(normals, axis=1), 1)
    cos = np.einsum("ij,ij->i", normals, truth)
    assert (cos > 0).mean() > 0.97  # outward, not just consistent
    assert np.median(cos) > 0.98  # the PCA direction is the surface's


def test_each_separate_part_faces_out_on_its_own():
    a = trimesh.creation.icosphere(3, radius=0.3)
    b = a.copy()
    b.apply_translation([0.8, 0, 0])
    b.invert()  # the second body's file normals point in: estimation does not read them
    points = np.vstack([sampled(a, 1500)[0], sampled(b, 1500)[0]])
    normals = estimate_normals(points)
    centres = np.where(points[:, :1] < 0.4, [[0.0, 0, 0]], [[0.8, 0, 0]])
    outward = np.einsum("ij,ij->i", normals, points - centres)
    assert (outward > 0).mean() > 0.99
