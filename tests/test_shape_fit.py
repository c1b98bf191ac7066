"""Shapes: latent refinement (fit / eval --refine-steps), eval --resolution, component
counts, and previews without pinholes."""

import json

import numpy as np
import pytest
import torch
import trimesh
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.datasets import Sampling, load_shapes
from inr_gon.inference.latents import load_latents
from inr_gon.inference.shape_eval import shape_latents
from inr_gon.inference.shape_metrics import components, mesh_parts
from inr_gon.inference.shape_refine import lr_at
from inr_gon.run import load_run
from inr_gon.shapes.mesh import extract_mesh, sdf_volume
from inr_gon.shapes.splat import render_mesh
from inr_gon.training.sdf import ENCODE_POINTS, fixed_subset, shape_errors
from inr_gon.training.train import train


@pytest.fixture(scope="module")
def sdf_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapefit") / "run"
    cfg = Config.of(data="builtin:shapes3d:6", hidden=16, layers=2, latent_dim=4, steps=20,
                    batch_size=3, sdf_points=64, sdf_samples=512, lr=1e-3, log_every=10,
                    preview_every=0, checkpoint_every=0, val_fraction=0.34)
    train(cfg, out, quiet=True)
    return out


def test_refined_latent_has_lower_loss_than_the_one_step_latent(sdf_run):
    run = load_run(sdf_run)
    s = load_shapes("builtin:shapes3d:6", Sampling.from_config(run.cfg), quiet=True)
    pts, sdf = torch.from_numpy(s.points), torch.from_numpy(s.sdf)[..., None]
    clamp = run.cfg.sdf.sdf_clamp
    z0, z = shape_latents(run.model, pts, sdf, clamp, refine_steps=30, lr=1e-2)
    assert z0.shape == z.shape == (6, 4) and not torch.equal(z0, z)
    p, d = fixed_subset(pts, sdf, ENCODE_POINTS)
    before, after = shape_errors(run.model, p, d, z0, clamp), shape_errors(run.model, p, d, z, clamp)
    assert (after < before).all(), (before, after)
    # each shape's latent is its own: refining one alone gives the same latent
    _, z_alone = shape_latents(run.model, pts[2:3], sdf[2:3], clamp, refine_steps=30, lr=1e-2)
    torch.testing.assert_close(z_alone[0], z[2], atol=1e-5, rtol=1e-4)


def test_a_time_budget_bounds_refinement_and_its_lr_drop(sdf_run):
    """seconds: a spent budget leaves the one-step latent; an ample one changes nothing against
    the steps alone; the lr drops at half the budget or half the steps."""
    run = load_run(sdf_run)
    s = load_shapes("builtin:shapes3d:6", Sampling.from_config(run.cfg), quiet=True)
    pts, sdf = torch.from_numpy(s.points), torch.from_numpy(s.sdf)[..., None]
    clamp = run.cfg.sdf.sdf_clamp
    z0, z_none = shape_latents(run.model, pts, sdf, clamp, refine_steps=20, seconds=1e-9)
    assert torch.equal(z0, z_none)
    _, z_steps = shape_latents(run.model, pts, sdf, clamp, refine_steps=20)
    _, z_ample = shape_latents(run.model, pts, sdf, clamp, refine_steps=20, seconds=1e6)
    assert torch.equal(z_steps, z_ample)
    assert lr_at(0, 100, 1.0) == 1.0 and lr_at(50, 100, 1.0) == lr_at(0, 100, 1.0, 0.5) == 0.1


def test_fit_and_mesh_take_a_time_budget_on_sdf_runs_only(sdf_run, tmp_path, capsys, tiny_cfg):
    code, out, err = run_cli(capsys, "fit", sdf_run, "builtin:shapes3d:2", "--time-budget", "1s",
                             "--json")
    assert code == 0, err
    steps = json.loads(out)["refine_steps"]  # a budget alone refines until it is spent
    assert 0 < steps < 100_000 and f"sdf_l1_{steps}" in json.loads(out)["items"][0]
    code, _, err = run_cli(capsys, "mesh", sdf_run, "builtin:shapes3d:1", "--time-budget", "1s",
                           "-r", "16", "--out", tmp_path / "m", "--quiet")
    assert code == 0, err
    assert_input_error(*run_cli(capsys, "fit", sdf_run, "builtin:shapes3d:1", "--time-budget",
                                "soon", "--quiet")[::2], "--time-budget")
    train(tiny_cfg.replace(steps=1, preview_every=0), tmp_path / "img", quiet=True)
    assert_input_error(*run_cli(capsys, "fit", tmp_path / "img", tiny_cfg.dataset.data,
                                "--time-budget", "5s", "--quiet")[::2], "--time-budget", "SDF")


def test_fit_cli_on_shapes_refines_and_saves_latents(sdf_run, mesh_dir, capsys, tmp_path):
    code, out, err = run_cli(capsys, "fit", sdf_run, mesh_dir / "torus.obj", "builtin:shapes3d:2",
                             "--refine-steps", "10", "--json", "--out", tmp_path / "z.safetensors")
    assert code == 0, err
    rows = json.loads(out)["items"]
    assert [r["name"] for r in rows][0] == "torus" and len(rows) == 3
    assert all(r["sdf_l1_10"] < r["sdf_l1_0"] for r in rows)
    names, z = load_latents(tmp_path / "z.safetensors", 4)
    assert len(names) == 3 and z.shape == (3, 4)
    code, out, err = run_cli(capsys, "fit", sdf_run, mesh_dir / "torus.obj", "--refine-steps", "2")
    assert code == 0 and "sdf L1 +2" in out, err


def test_eval_on_shapes_takes_resolution_and_refine_steps(sdf_run, capsys):
    code, out, err = run_cli(capsys, "eval", sdf_run, "builtin:shapes3d:2", "--resolution", "20",
                             "--refine-steps", "5", "--json", "--quiet")
    assert code == 0, err
    report = json.loads(out)
    assert report["resolution"] == 20 and report["refine_steps"] == 5
    for row in report["items"]:
        assert row["sdf_l1_5"] < row["sdf_l1_0"]
        assert row["components_ref"] >= 1 and row["components"] >= 0
        assert isinstance(row["watertight"], bool)


@pytest.mark.parametrize("args,word", [
    (["--resolution", "1"], "--resolution"),
    (["--resolution", "99999"], "--resolution"),
    (["--refine-steps", "-1"], "--refine-steps"),
    (["--refine-lr", "0"], "--refine-lr"),
    (["--split", "val"], "--split"),
])
def test_eval_on_shapes_bad_flags_exit_2(sdf_run, capsys, args, word):
    assert_input_error(*run_cli(capsys, "eval", sdf_run, "builtin:shapes3d:2", *args,
                                "--quiet")[::2], word)


def test_new_flags_refused_where_they_do_not_apply(sdf_run, tmp_path, capsys, tiny_cfg):
    assert_input_error(*run_cli(capsys, "fit", sdf_run, "builtin:shapes3d:1", "--backend", "onnx",
                                "--quiet")[::2], "--backend")
    train(tiny_cfg.replace(steps=1, preview_every=0), tmp_path / "img", quiet=True)
    assert_input_error(*run_cli(capsys, "eval", tmp_path / "img", tiny_cfg.dataset.data, "--resolution",
                                "64", "--quiet")[::2], "--resolution", "SDF")


def two_spheres(p):
    a = np.linalg.norm(p - [0.4, 0, 0], axis=1) - 0.3
    b = np.linalg.norm(p + [0.4, 0, 0], axis=1) - 0.3
    return np.minimum(a, b).astype(np.float32)


def test_components_count_two_disjoint_spheres():
    pair = extract_mesh(sdf_volume(two_spheres, 48))
    one = trimesh.creation.icosphere(2, radius=0.5)
    assert components(pair) == 2 and components(one) == 1 and components(None) == 0
    assert pair.is_watertight  # closed everywhere, yet it fell apart against a one-body reference
    assert mesh_parts(pair, one) == {"components": 2, "components_ref": 1, "watertight": False}
    assert mesh_parts(pair, pair)["watertight"] and not mesh_parts(None, one)["watertight"]


def pinholes(img: np.ndarray) -> int:
    """Background (white) pixels whose 4 neighbours are all surface: holes a renderer left."""
    bg = (img == 1).all(-1)
    inner = bg[1:-1, 1:-1] & ~bg[:-2, 1:-1] & ~bg[2:, 1:-1] & ~bg[1:-1, :-2] & ~bg[1:-1, 2:]
    return int(inner.sum())


@pytest.mark.parametrize("resolution,size", [(32, 64), (160, 128), (48, 256)])
def test_preview_has_no_pinholes(resolution, size):
    """Sub-pixel triangles (160^3 at 128 px) and large ones (48^3 at 256 px) alike."""
    img = render_mesh(extract_mesh(sdf_volume(two_spheres, resolution)), size)
    assert pinholes(img) == 0
    covered = (img < 1).any(-1).mean()
    assert covered == pytest.approx(2 * np.pi * 0.3**2 / 4, rel=0.1)  # two discs' share


def test_preview_of_a_speck_or_an_offscreen_mesh_is_blank():
    speck = trimesh.creation.icosphere(1, radius=1e-3)
    far = trimesh.creation.icosphere(1, radius=0.1).apply_translation([5, 0, 0])
    for mesh in (speck, far):
        assert (render_mesh(mesh, 32) == 1).all()


def test_preview_of_a_coarse_source_mesh_has_no_pinholes():
    img = render_mesh(trimesh.creation.torus(0.6, 0.25, major_sections=12, minor_sections=8), 128)
    assert pinholes(img) == 0 and (img < 1).any()
