"""Meshing: SDF volumes in bounded memory, marching cubes at any resolution, files, the CLI."""

import numpy as np
import pytest
import trimesh
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.inference.shape_eval import evaluate_shapes
from inr_gon.run import load_run
from inr_gon.shapes.mesh import export_mesh, extract_mesh, sdf_volume
from inr_gon.shapes.splat import render_mesh
from inr_gon.training.train import train


def sphere(p):
    return (np.linalg.norm(p, axis=1) - 0.6).astype(np.float32)


def torus(p):
    return (np.hypot(np.hypot(p[:, 0], p[:, 1]) - 0.5, p[:, 2]) - 0.2).astype(np.float32)


@pytest.mark.parametrize("resolution", [32, 96])
def test_marching_cubes_at_two_resolutions(resolution):
    mesh = extract_mesh(sdf_volume(sphere, resolution))
    assert mesh.is_watertight and mesh.volume > 0  # closed, faces outward
    r = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(r - 0.6).max() < 2.0 / resolution  # within a cell of the true surface
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=8.0 / resolution)


@pytest.mark.parametrize("f", [sphere, torus])
def test_coarse_to_fine_volume_gives_the_dense_mesh(f):
    sparse, dense = sdf_volume(f, 128), sdf_volume(f, 128, dense=True)
    a, b = extract_mesh(sparse), extract_mesh(dense)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
    near = np.abs(dense) < 0.05
    np.testing.assert_array_equal(sparse[near], dense[near])


def test_no_zero_crossing_gives_no_mesh():
    assert extract_mesh(sdf_volume(lambda p: np.ones(len(p), np.float32), 16)) is None


@pytest.mark.parametrize("fmt", ["ply", "obj", "glb"])
def test_export_formats_round_trip(tmp_path, fmt):
    mesh = extract_mesh(sdf_volume(torus, 32))
    export_mesh(mesh, tmp_path / f"t.{fmt}", fmt)
    back = trimesh.load(tmp_path / f"t.{fmt}", force="mesh")
    assert len(back.faces) == len(mesh.faces)
    np.testing.assert_allclose(back.bounds, mesh.bounds, atol=1e-5)


def test_render_mesh_shades_the_shape_on_white():
    img = render_mesh(extract_mesh(sdf_volume(sphere, 32)), 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert (img[0, 0] == 1).all() and (img[32, 32] < 0.95).all()  # background / surface
    covered = (img < 1).any(-1).mean()
    assert covered == pytest.approx(np.pi * 0.6**2 / 4, rel=0.1)  # the disc's share of the frame


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory, mesh_dir):
    """A run on mesh files with no training. With its output bias zeroed, SIREN's initial
    function oscillates around 0 and crosses it all over: all the mechanics of meshing need."""
    import torch

    from inr_gon.run import save_model

    out = tmp_path_factory.mktemp("mesh") / "run"
    cfg = Config.of(data=str(mesh_dir), hidden=16, layers=2, latent_dim=4, steps=0,
                    sdf_samples=512, sdf_points=64, val_fraction=0.0)
    train(cfg, out, quiet=True)
    run = load_run(out)
    with torch.no_grad():
        run.decoder.out.bias.zero_()
    save_model(out, run.model)
    return out


def test_mesh_cli_writes_meshes_and_previews(untrained_run, mesh_dir, capsys, tmp_path):
    code, _, err = run_cli(capsys, "mesh", untrained_run, "-r", "24", "--out", tmp_path / "a",
                           "--format", "obj", "--quiet")
    assert code == 0, err
    for name in ("box", "sphere", "torus"):
        assert trimesh.load(tmp_path / "a" / f"{name}.obj", force="mesh").faces.shape[1] == 3
        assert (tmp_path / "a" / f"{name}.png").is_file()
    assert (tmp_path / "a" / "grid.png").is_file()
    code, _, err = run_cli(capsys, "mesh", untrained_run, mesh_dir / "sphere.ply", "-r", "24",
                           "--out", tmp_path / "b", "--original-frame", "--quiet")
    assert code == 0, err
    norm = trimesh.load(tmp_path / "a" / "sphere.obj", force="mesh", process=False)
    orig = trimesh.load(tmp_path / "b" / "sphere.ply", force="mesh", process=False)
    np.testing.assert_allclose(orig.vertices, norm.vertices / (0.9 / 2.0) + [5, 0, 0], atol=1e-4)


def test_mesh_cli_bad_inputs_exit_2(untrained_run, tmp_path, capsys):
    (tmp_path / "junk.glb").write_bytes(b"glTF\x02\x00\x00\x00 junk")
    assert_input_error(*run_cli(capsys, "mesh", untrained_run, tmp_path / "junk.glb", "--quiet")[::2],
                   "junk.glb", "does not parse")
    assert_input_error(*run_cli(capsys, "mesh", untrained_run, "--format", "stl", "--quiet")[::2], "--format")
    assert_input_error(*run_cli(capsys, "mesh", untrained_run, "-r", "1", "--quiet")[::2], "--resolution")
    assert_input_error(*run_cli(capsys, "train", tmp_path / "junk.glb", "--out", tmp_path / "r",
                            "--quiet")[::2], "does not parse")


def test_mesh_cli_refuses_image_runs(tmp_path, capsys, tiny_cfg):
    train(tiny_cfg.replace(steps=1, preview_every=0), tmp_path / "img", quiet=True)
    assert_input_error(*run_cli(capsys, "mesh", tmp_path / "img", "--quiet")[::2], "SDF run")


def test_evaluate_shapes_reports_every_item(untrained_run, mesh_dir):
    report = evaluate_shapes(load_run(untrained_run), str(mesh_dir), quiet=True, resolution=24,
                             points=2000)
    assert report["count"] == 3 and [r["name"] for r in report["items"]] == ["box", "sphere", "torus"]
    assert all(r["split"] == "train" for r in report["items"])
    assert "normalised frame" in report["convention"]
    for row in report["items"]:
        assert 0.0 <= row["iou"] <= 1.0
        if row["chamfer_l1"] is not None:
            assert row["chamfer_l1"] > 0 and 0 <= row["normal_consistency"] <= 1
