"""Mesh data: loading, normalising, signed distances, sampling, the cache, bad files."""

import numpy as np
import pytest
import trimesh

from inr_gon.datasets import Sampling, detect_modality, load_images, load_shapes
from inr_gon.datasets import shapeset as shapeset_module
from inr_gon.datasets.meshes import RADIUS, load_mesh, normalise
from inr_gon.datasets.sdf_cache import cache_dir
from inr_gon.datasets.shapes3d import shape_params, shape_sdf
from inr_gon.datasets.signed_distance import morton_order, signed_distance
from inr_gon.errors import InputError

SMALL = Sampling(count=3000)


def test_sphere_is_normalised_and_its_transform_recorded(mesh_dir):
    s = load_shapes(mesh_dir / "sphere.ply", SMALL, quiet=True)
    assert s.points.shape == (1, 3000, 3) and s.sdf.shape == (1, 3000)
    np.testing.assert_allclose(s.centers[0], [5, 0, 0], atol=1e-9)
    assert s.scales[0] == pytest.approx(RADIUS / 2.0)
    radius = np.linalg.norm(s.surface(0).vertices, axis=1)
    assert radius.max() == pytest.approx(RADIUS) and radius.min() > 0.99 * RADIUS


def test_sampling_signs_and_distances_on_a_sphere(mesh_dir):
    s = load_shapes(mesh_dir / "sphere.ply", SMALL, quiet=True)
    p, d, mesh = s.points[0], s.sdf[0], s.surface(0)
    # A convex polyhedron between its inscribed sphere (r_in) and its circumsphere (RADIUS):
    # |p| - RADIUS <= sdf <= |p| - r_in, inside and outside.
    r_in = np.abs((mesh.face_normals * mesh.triangles[:, 0]).sum(1)).min()
    r = np.linalg.norm(p, axis=1)
    assert 0.99 * RADIUS < r_in < RADIUS
    assert (d >= r - RADIUS - 1e-5).all() and (d <= r - r_in + 1e-5).all()
    assert np.abs(p).max() <= 1.0
    n_uniform, per = SMALL.groups()
    assert n_uniform == 2400 and sum(per) == 600
    assert np.abs(d[:per[0]]).mean() < np.abs(d[per[0]:600]).mean()  # noise scales grow


def test_box_signs_match_the_analytic_box(mesh_dir):
    s = load_shapes(mesh_dir / "box.stl", SMALL, quiet=True)
    half = np.array([0.5, 1.0, 1.5]) * s.scales[0]
    q = np.abs(s.points[0]) - half
    truth = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)
    np.testing.assert_allclose(s.sdf[0], truth, atol=1e-5)


def test_distance_is_exact_and_both_sign_paths_agree():
    mesh = trimesh.creation.torus(0.6, 0.25, major_sections=20, minor_sections=10)
    pts = np.random.default_rng(0).uniform(-1, 1, (400, 3))
    a = signed_distance(mesh.vertices, mesh.faces, pts, closed=True)
    b = signed_distance(mesh.vertices, mesh.faces, pts, closed=False)
    np.testing.assert_allclose(a, b, atol=1e-6)
    for i in range(0, 400, 40):  # brute force over every triangle
        cp = trimesh.triangles.closest_point(mesh.triangles, np.repeat(pts[i:i + 1], len(mesh.faces), 0))
        assert abs(a[i]) == pytest.approx(np.linalg.norm(cp - pts[i], axis=1).min(), abs=1e-6)
    torus = np.hypot(np.hypot(pts[:, 0], pts[:, 1]) - 0.6, pts[:, 2]) - 0.25
    clear = np.abs(torus) > 0.03  # beyond the faceting error of this coarse torus
    assert ((a < 0) == (torus < 0))[clear].all()


def test_morton_order_interleaves_the_bits_of_the_three_axes():
    pts = np.random.default_rng(1).uniform(-1, 1, (2000, 3))
    q = np.clip(((pts + 1.0) * 512.0).astype(np.int64), 0, 1023)
    code = sum(((q[:, k] >> b) & 1) << (3 * b + k) for b in range(10) for k in range(3))
    order = morton_order(pts)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(pts)))
    assert (np.diff(code[order]) >= 0).all()


def test_open_mesh_gets_sensible_signs(tmp_path):
    sphere = trimesh.creation.icosphere(3)
    keep = sphere.triangles_center[:, 2] < 0.9  # cut a cap off: a hole at the top
    trimesh.Trimesh(sphere.vertices, sphere.faces[keep]).export(tmp_path / "open.obj")
    s = load_shapes(tmp_path / "open.obj", SMALL, quiet=True)
    r = np.linalg.norm(s.points[0], axis=1)
    assert not load_mesh(tmp_path / "open.obj").is_watertight
    inside, outside = r < 0.7 * RADIUS, r > 1.1 * RADIUS
    assert (s.sdf[0][inside] < 0).mean() > 0.99 and (s.sdf[0][outside] > 0).all()


def test_cache_is_reused_by_content_not_by_name(mesh_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("INR_GON_CACHE", str(tmp_path / "cache"))
    first = load_shapes(mesh_dir / "torus.obj", SMALL, quiet=True)
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 1
    assert cache_dir() == tmp_path / "cache"

    def no_sampling(*a, **k):
        raise AssertionError("sampled again instead of reading the cache")

    monkeypatch.setattr(shapeset_module, "sample_mesh", no_sampling)
    (tmp_path / "moved").mkdir()
    (tmp_path / "moved" / "renamed.obj").write_bytes((mesh_dir / "torus.obj").read_bytes())
    again = load_shapes(tmp_path / "moved" / "renamed.obj", SMALL, quiet=True)
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.sdf, again.sdf)
    with pytest.raises(AssertionError, match="sampled again"):  # other settings: a miss
        load_shapes(mesh_dir / "torus.obj", Sampling(count=2000), quiet=True)


def test_damaged_cache_entry_is_resampled(mesh_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("INR_GON_CACHE", str(tmp_path / "cache"))
    first = load_shapes(mesh_dir / "torus.obj", SMALL, quiet=True)
    (entry,) = (tmp_path / "cache").rglob("*.safetensors")
    entry.write_bytes(b"garbage")
    again = load_shapes(mesh_dir / "torus.obj", SMALL, quiet=True)
    np.testing.assert_array_equal(first.sdf, again.sdf)


def test_scene_is_flattened_and_vertices_merged(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box([1, 1, 1]))
    shift = trimesh.transformations.translation_matrix([3, 0, 0])
    scene.add_geometry(trimesh.creation.box([1, 1, 1]), transform=shift)
    scene.export(tmp_path / "two.glb")
    mesh = load_mesh(tmp_path / "two.glb")
    assert len(mesh.faces) == 24 and len(mesh.vertices) == 16 and mesh.body_count == 2
    _, center, _ = normalise(mesh)
    np.testing.assert_allclose(center, [1.5, 0, 0], atol=1e-9)


def write_bad_files(folder):
    (folder / "junk.glb").write_bytes(b"glTF\x02\x00\x00\x00 this is not a mesh")
    (folder / "nofaces.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    (folder / "nan.obj").write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")


@pytest.mark.parametrize("name, words", [("junk.glb", "does not parse"), ("nofaces.obj", "no triangle faces"),
                                         ("nan.obj", "non-finite")])
def test_a_bad_file_alone_is_an_input_error(tmp_path, name, words):
    write_bad_files(tmp_path)
    with pytest.raises(InputError, match=words):
        load_shapes(tmp_path / name, SMALL, quiet=True)


def test_bad_files_among_good_ones_are_skipped_with_one_warning(tmp_path, mesh_dir, capsys):
    write_bad_files(tmp_path)
    (tmp_path / "torus.obj").write_bytes((mesh_dir / "torus.obj").read_bytes())
    s = load_shapes(tmp_path, SMALL, quiet=True)
    assert s.names == ["torus"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: skipped 3 unusable mesh files")
    assert all(n in err[0] for n in ("junk.glb", "nofaces.obj", "nan.obj"))


def test_only_bad_files_or_mixed_folders_are_input_errors(tmp_path, mesh_dir):
    write_bad_files(tmp_path)
    with pytest.raises(InputError, match="none of the 3 mesh files"):
        load_shapes(tmp_path, SMALL, quiet=True)
    (tmp_path / "torus.obj").write_bytes((mesh_dir / "torus.obj").read_bytes())
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    for call in (lambda: load_shapes(tmp_path, SMALL, quiet=True), lambda: detect_modality(tmp_path)):
        with pytest.raises(InputError, match="both images"):
            call()


def test_builtin_shapes3d_are_analytic_and_stable():
    assert detect_modality("builtin:shapes3d:3") == "sdf"
    with pytest.raises(InputError, match="not images"):
        load_images("builtin:shapes3d", (8, 8))
    a = load_shapes("builtin:shapes3d:3", Sampling(count=500), quiet=True)
    b = load_shapes("builtin:shapes3d:2", Sampling(count=500), quiet=True)
    np.testing.assert_array_equal(a.points[:2], b.points)  # item i depends only on i
    for i in range(3):
        np.testing.assert_allclose(a.sdf[i], shape_sdf(i, a.points[i]), atol=1e-6)
        surface = a.surface(i)
        assert surface.is_watertight and surface.volume > 0
        assert np.abs(shape_sdf(i, surface.vertices)).max() < 1e-6
    kind, center, sizes, rot = shape_params(0)[0]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
