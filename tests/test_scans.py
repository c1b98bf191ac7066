"""Point clouds and scans (issue 24): readers, bad clouds, the approximate SDF samples, fitting
a cloud to a trained SDF run (`fit`, `mesh`), and the refinement schedule."""

import json

import numpy as np
import pytest
import torch
import trimesh
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.datasets import Sampling, load_shapes
from inr_gon.datasets.clouds import (
    MIN_POINTS,
    Cloud,
    is_cloud_file,
    load_cloud,
    load_cloud_set,
    sample_cloud,
)
from inr_gon.datasets.meshes import normalise
from inr_gon.datasets.signed_distance import signed_distance
from inr_gon.inference.latents import load_latents
from inr_gon.inference.mesh import mesh_run, shape_inputs
from inr_gon.inference.shape_refine import lr_at, shape_latents
from inr_gon.models.base import clamped_l1
from inr_gon.run import load_run
from inr_gon.shapes.mesh import extract_mesh, sdf_volume
from inr_gon.training.batches import split_indices
from inr_gon.training.train import train

TORUS = trimesh.creation.torus(0.6, 0.25, major_sections=32, minor_sections=16)


def surface_cloud(mesh, n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(points [n, 3], outward unit normals [n, 3]) sampled on a mesh's surface."""
    points, faces = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return points, mesh.face_normals[faces]


def write_ply(path, points, normals=None, binary=True) -> None:
    """A vertex-only PLY, with nx ny nz properties when normals are given."""
    cols = np.hstack([points, normals]) if normals is not None else points
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals is not None else [])
    head = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
            f"element vertex {len(points)}", *(f"property float {k}" for k in names), "end_header"]
    body = (cols.astype("<f4").tobytes() if binary else
            "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in cols).encode())
    path.write_bytes(("\n".join(head) + "\n").encode() + body)


def write_obj(path, points, normals=None) -> None:
    lines = [f"v {x} {y} {z}" for x, y, z in points]
    lines += [f"vn {x} {y} {z}" for x, y, z in normals] if normals is not None else []
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def torus_cloud():
    return surface_cloud(TORUS)


@pytest.mark.parametrize("kind", ["ply", "ply-ascii", "xyz", "obj"])
@pytest.mark.parametrize("with_normals", [True, False])
def test_clouds_are_read_with_and_without_normals(tmp_path, torus_cloud, kind, with_normals):
    points, normals = torus_cloud
    n = normals if with_normals else None
    path = tmp_path / f"scan.{kind.split('-')[0]}"
    if kind.startswith("ply"):
        write_ply(path, points, n, binary=kind == "ply")
    elif kind == "xyz":
        np.savetxt(path, np.hstack([points, n]) if with_normals else points, header="a scan")
    else:
        write_obj(path, points, n)
    assert is_cloud_file(path)
    cloud = load_cloud(path)
    np.testing.assert_allclose(cloud.points, points, atol=1e-5)
    if with_normals:
        np.testing.assert_allclose(cloud.normals, normals, atol=1e-5)
    else:
        assert cloud.normals is None


def test_files_with_faces_are_meshes_not_clouds(tmp_path, mesh_dir):
    TORUS.export(tmp_path / "t.ply")
    assert not is_cloud_file(tmp_path / "t.ply") and not is_cloud_file(mesh_dir / "torus.obj")
    assert not is_cloud_file(mesh_dir / "box.stl") and not is_cloud_file(tmp_path / "nope.xyz")


def test_a_cloud_lands_where_its_mesh_does(tmp_path, torus_cloud):
    """Clouds are normalised as meshes are (same centre and scale, up to sampling)."""
    moved = TORUS.copy().apply_scale(3.0).apply_translation([10, -2, 5])
    points, normals = surface_cloud(moved, 5000)
    np.savetxt(tmp_path / "s.xyz", np.hstack([points, normals]))
    shapes = load_cloud_set(tmp_path / "s.xyz", Sampling(count=3000))
    _, center, scale = normalise(moved)
    np.testing.assert_allclose(shapes.centers[0], center, atol=0.02)
    assert shapes.scales[0] == pytest.approx(scale, rel=0.01)
    assert shapes.points.shape == (1, 3000, 3) and shapes.sdf.shape == (1, 3000)


def torus_truth(points: np.ndarray) -> np.ndarray:
    return signed_distance(TORUS.vertices, TORUS.faces, points, closed=True)


def test_oriented_cloud_samples_approximate_the_true_sdf(torus_cloud):
    points, normals = torus_cloud  # the torus lies within radius 0.85: already in the cube
    s = Sampling(count=6000)
    pts, sdf = sample_cloud(Cloud(points, normals), s)
    assert pts.shape == (6000, 3) and sdf.shape == (6000,) and (np.abs(pts) <= 1).all()
    truth = torus_truth(pts)
    assert (sdf == 0).sum() >= s.groups()[1][0] // 2  # half the first group on the cloud
    far = np.abs(truth) > 0.03
    assert ((sdf[far] < 0) == (truth[far] < 0)).mean() > 0.99  # signs: the winding number
    assert np.abs(sdf - truth).mean() < 0.01


def test_unoriented_cloud_samples_approximate_the_true_sdf_too(torus_cloud):
    """Without normals they are estimated (datasets/normals.py): inside points get their sign."""
    points, _ = torus_cloud
    pts, sdf = sample_cloud(Cloud(points, None), Sampling(count=6000))
    truth = torus_truth(pts)
    far = np.abs(truth) > 0.03
    assert (sdf[far] < 0).any() and ((sdf[far] < 0) == (truth[far] < 0)).mean() > 0.98
    assert np.abs(sdf - truth).mean() < 0.015


@pytest.fixture(scope="module")
def scan_run(tmp_path_factory):
    """A small SDF run that has learnt something (held-out error well under an untrained one)."""
    out = tmp_path_factory.mktemp("scanrun") / "run"
    cfg = Config.of(data="builtin:shapes3d:12", hidden=32, layers=2, latent_dim=8, w0=10.0,
                    modulation="all", steps=80, batch_size=4, sdf_points=256, sdf_samples=2000,
                    lr=2e-3, log_every=40, preview_every=0, checkpoint_every=0,
                    val_fraction=0.25, threads=1)
    train(cfg, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def held_out_scan(scan_run, tmp_path_factory):
    """(oriented .xyz of a held-out shape, its true sdf function in the cloud's frame)."""
    run = load_run(scan_run)
    shapes = load_shapes(run.cfg.dataset.data, Sampling.from_config(run.cfg), quiet=True)
    _, val = split_indices(len(shapes.names), run.cfg.dataset.val_fraction, run.cfg.train.seed)
    i = int(val[0])
    points, normals = surface_cloud(shapes.surface(i), 3000)
    path = tmp_path_factory.mktemp("scans") / "held.xyz"
    np.savetxt(path, np.hstack([points, normals]))
    c = load_cloud_set(path, Sampling(count=100))
    center, scale = c.centers[0], float(c.scales[0])

    def truth(p: np.ndarray) -> np.ndarray:  # cloud frame -> the shape's frame and back
        return shapes.true_sdf(i, (p / scale + center).astype(np.float32)) * scale

    return path, truth


def true_error(run, z: torch.Tensor, truth) -> float:
    """Clamped L1 of the network's SDF against the true SDF, near the surface and in the cube."""
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(-1, 1, (4000, 3)), rng.normal(0, 0.3, (4000, 3))])
    p = np.clip(p, -1, 1).astype(np.float32)
    target = torch.from_numpy(truth(p).astype(np.float32))[None, :, None]
    with torch.no_grad():
        pred = run.model.decode(torch.from_numpy(p)[None], z[:1])
    return float(clamped_l1(pred, target, run.cfg.sdf.sdf_clamp))


def test_fitting_a_cloud_beats_the_untrained_latent_and_refinement_lowers_the_loss(
        scan_run, held_out_scan):
    run = load_run(scan_run)
    path, truth = held_out_scan
    _, points, sdf, _, _ = shape_inputs(run.cfg, [str(path)], quiet=True)
    pts, d = torch.from_numpy(points), torch.from_numpy(sdf)[..., None]
    losses: list[float] = []
    z0, z = shape_latents(run.model, pts, d, run.cfg.sdf.sdf_clamp, 40, losses=losses)
    zero = true_error(run, torch.zeros_like(z0), truth)
    one_step, refined = true_error(run, z0, truth), true_error(run, z, truth)
    assert one_step < zero and refined < one_step, (zero, one_step, refined)
    assert len(losses) == 40 and np.mean(losses[-5:]) < losses[0]


def test_refinement_schedule_divides_the_rate_by_10_halfway():
    assert [lr_at(k, 4, 1.0) for k in range(4)] == [1.0, 1.0, 0.1, 0.1]
    assert [lr_at(k, 3, 1.0) for k in range(3)] == [1.0, 1.0, 0.1]
    assert lr_at(0, 1, 1.0) == 1.0


def test_fit_and_mesh_cli_with_a_cloud(scan_run, held_out_scan, capsys, tmp_path):
    path, _ = held_out_scan
    z_file = tmp_path / "z.safetensors"
    code, out, err = run_cli(capsys, "fit", scan_run, path, "--refine-steps", "10", "--json",
                             "--out", z_file, "--quiet")
    assert code == 0, err
    row, = json.loads(out)["items"]
    assert row["name"] == "held" and row["sdf_l1_10"] < row["sdf_l1_0"]
    names, z = load_latents(z_file, 8)
    assert names == ["held"] and z.shape == (1, 8)
    code, out, err = run_cli(capsys, "mesh", scan_run, path, "-r", "32", "--refine-steps", "5",
                             "--out", tmp_path / "m", "--original-frame", "--quiet")
    assert code == 0, err
    mesh = trimesh.load(tmp_path / "m" / "held.ply")
    cloud = load_cloud(path).points
    assert mesh.is_watertight
    assert np.abs(mesh.bounds - [cloud.min(0), cloud.max(0)]).max() < 0.3  # the scan's frame
    code, _, err = run_cli(capsys, "mesh", scan_run, "--latents", z_file, "-r", "32",
                           "--out", tmp_path / "z", "--quiet")
    assert code == 0 and (tmp_path / "z" / "held.ply").exists(), err
    assert_input_error(*run_cli(capsys, "mesh", scan_run, path, "--latents", z_file,
                                "--quiet")[::2], "--latents")


def test_mesh_run_rows_for_a_cloud_say_watertight(scan_run, held_out_scan, tmp_path):
    rows = mesh_run(load_run(scan_run), [str(held_out_scan[0])], tmp_path, resolution=32,
                    quiet=True)
    assert len(rows) == 1 and rows[0]["watertight"] and rows[0]["components"] >= 1


BAD = {
    "few.xyz": ("0 0 0\n1 1 1\n", "points"),
    "empty.xyz": ("", "0 points"),
    "nan.xyz": ("nan 0 0\n" + "".join(f"{i} {i % 7} {i % 5}\n" for i in range(100)), "NaN"),
    "inf.xyz": ("inf 0 0\n" + "".join(f"{i} {i % 7} {i % 5}\n" for i in range(100)), "infinite"),
    "same.xyz": ("1 2 3\n" * 100, "same point"),
    "cols.xyz": ("1 2 3 4\n" * 100, "4 numbers"),
    "junk.xyz": ("this is not a cloud\n", "x y z"),
    "zeronormal.xyz": ("".join(f"{i} {i % 7} {i % 5} 0 0 0\n" for i in range(100)), "normals"),
    "junk.ply": ("ply\nformat ascii 1.0\nelement vertex 100\nproperty float x\nend_header\n1\n",
                 "PLY"),
    "few.obj": ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "points"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_clouds_exit_2_with_one_line(scan_run, tmp_path, capsys, name):
    text, word = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    for command in ("fit", "mesh"):
        assert_input_error(*run_cli(capsys, command, scan_run, path, "--quiet")[::2],
                           word, str(path.name))


def test_eval_of_a_cloud_says_it_needs_a_mesh(scan_run, tmp_path, capsys, torus_cloud):
    write_ply(tmp_path / "scan.ply", torus_cloud[0])
    assert_input_error(*run_cli(capsys, "eval", scan_run, tmp_path / "scan.ply", "--quiet")[::2],
                       "point cloud")


def test_min_points_is_enough(tmp_path, torus_cloud):
    np.savetxt(tmp_path / "m.xyz", torus_cloud[0][:MIN_POINTS])
    assert load_cloud(tmp_path / "m.xyz").points.shape == (MIN_POINTS, 3)


def test_straight_and_open_inputs_fit_without_noise(scan_run, tmp_path, capsys):
    """A cloud on a line (no hull, no inside) and an open mesh fit with nothing on stderr."""
    t = np.linspace(-1, 1, 100)
    np.savetxt(tmp_path / "line.xyz", np.c_[t, 0.5 * t, np.zeros_like(t)])
    sphere = trimesh.creation.icosphere(2)
    sphere.update_faces(np.arange(len(sphere.faces)) > 10)  # a hole: an open mesh
    sphere.export(tmp_path / "open.obj")
    code, out, err = run_cli(capsys, "fit", scan_run, tmp_path / "line.xyz",
                             tmp_path / "open.obj", "--refine-steps", "2", "--json", "--quiet")
    assert code == 0 and err == "", err
    assert [r["name"] for r in json.loads(out)["items"]] == ["line", "open"]


def test_a_level_set_cut_by_the_cube_is_capped_closed():
    """Inside reaching the grid's faces (a bad fit, a large shape): the mesh is still closed,
    and where it is not cut, nothing moves."""
    big = extract_mesh(sdf_volume(lambda p: (np.linalg.norm(p, axis=1) - 1.2).astype(np.float32), 24))
    assert big.is_watertight and big.volume > 0
    assert np.abs(big.bounds).max() <= 1.0 + 1.0 / 24  # the cap: within a cell of the faces
    small = extract_mesh(sdf_volume(lambda p: (np.linalg.norm(p, axis=1) - 0.5).astype(np.float32), 24))
    assert np.abs(np.linalg.norm(small.vertices, axis=1) - 0.5).max() < 0.02
