"""SDF training: the task's batches, a tiny GON training a few steps, exact resume."""

import json

import pytest
import torch
from origin_oracles import latent_autograd, latent_explicit

from inr_gon.datasets import Sampling
from inr_gon.models.factory import build_model
from inr_gon.run import load_run
from inr_gon.training.sdf import SdfTask, encode_shapes, training_shapes
from inr_gon.training.tasks import make_task
from inr_gon.training.train import Loop, train


def test_task_batches_are_per_shape_and_a_function_of_step(tiny_sdf_cfg):
    task = make_task(tiny_sdf_cfg, torch.device("cpu"), quiet=True)
    assert isinstance(task, SdfTask) and task.facts.modality == "sdf"
    assert tiny_sdf_cfg.replace(summary=task.facts).coord_dim == 3
    coords, values = task.batch(3)
    assert coords.shape == (3, 64, 3) and values.shape == (3, 64, 1)
    again = task.batch(3)
    assert torch.equal(coords, again[0]) and torch.equal(values, again[1])
    assert not torch.equal(coords, task.batch(4)[0])
    assert coords.abs().max() <= 1.0
    assert len(task.train_idx) + len(task.val_idx) == 6


def test_explicit_latent_matches_autograd_on_sdf_batches(tiny_sdf_cfg):
    task = make_task(tiny_sdf_cfg, torch.device("cpu"), quiet=True)
    model = build_model(tiny_sdf_cfg.replace(summary=task.facts))
    coords, values = task.batch(0)
    torch.testing.assert_close(latent_explicit(model.decoder, coords, values),
                               latent_autograd(model.decoder, coords, values, create_graph=False))


def test_tiny_sdf_gon_trains_and_logs_sdf_metrics(tiny_sdf_cfg, tmp_path):
    cfg = tiny_sdf_cfg.replace(steps=30, log_every=10, preview_every=30, checkpoint_every=0,
                               hidden=32, lr=3e-3)
    res = train(cfg, tmp_path / "run", quiet=True)
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [10, 20, 30] and "sdf_l1" in steps[0]
    assert "psnr" not in steps[0]
    assert res.metric == "sdf_l1" and rows[-1]["eval"] and "val_sdf_l1" in rows[-1]
    # a model that outputs 0 everywhere scores the clamped |SDF| (0.081 here); trained: 0.034
    task = make_task(cfg, torch.device("cpu"), quiet=True)
    zero = build_model(cfg.replace(summary=task.facts))
    with torch.no_grad():
        zero.decoder.out.weight.zero_(), zero.decoder.out.bias.zero_()
    zero_train, zero_val = task.evaluate(zero)
    assert res.train_psnr < 0.6 * zero_train and res.val_psnr < 0.6 * zero_val
    assert (tmp_path / "run/previews/step_000030.png").is_file()
    run = load_run(tmp_path / "run")
    assert run.cfg.summary.modality == "sdf" and run.cfg.extra["data"]["modality"] == "sdf"
    names, points, sdf, centers, scales = training_shapes(run.cfg, 2)
    z = encode_shapes(run.model, points, sdf)
    assert z.shape == (2, cfg.net.latent_dim) and torch.isfinite(z).all()


def test_sdf_resume_continues_exactly(tiny_sdf_cfg, tmp_path, monkeypatch):
    train(tiny_sdf_cfg, tmp_path / "whole", quiet=True)
    real_step = Loop.train_step

    def stop_after_two(self, step):
        out = real_step(self, step)
        self.stop_requested = step == 1
        return out

    monkeypatch.setattr(Loop, "train_step", stop_after_two)
    assert train(tiny_sdf_cfg, tmp_path / "cut", quiet=True).step == 2
    monkeypatch.setattr(Loop, "train_step", real_step)
    train(tiny_sdf_cfg, tmp_path / "cut", resume=True, quiet=True)
    whole = load_run(tmp_path / "whole").model.state_dict()
    cut = load_run(tmp_path / "cut").model.state_dict()
    for k in whole:
        assert torch.equal(whole[k], cut[k]), k


def test_sdf_config_fields_are_validated(tiny_sdf_cfg):
    from inr_gon.errors import InputError

    assert Sampling.from_config(tiny_sdf_cfg).noise == (0.01, 0.05, 0.15)
    for bad in [{"sdf_noise": "0.1,x"}, {"sdf_noise": "0"}, {"sdf_uniform": 1.0}, {"sdf_samples": 3}]:
        with pytest.raises(InputError, match=next(iter(bad))):
            tiny_sdf_cfg.replace(**bad).validate()


def test_sdf_trains_with_a_trilinear_grid_and_gauss_newton_steps(tmp_path, capsys):
    """Issue 14 item 1 on issue 12's options: per-shape points, so every step solves per signal."""
    from cli_helpers import run_cli

    code, _, err = run_cli(capsys, "train", "builtin:shapes3d:4", "--out", tmp_path / "run",
                           "--latent-grid", "2", "--latent-dim", "4", "--modulation", "all",
                           "--origin-step", "gauss-newton", "--inner-steps", "2", "--hidden", "16",
                           "--layers", "2", "--steps", "3", "--batch-size", "2", "--sdf-points", "64",
                           "--sdf-samples", "512", "--preview-every", "0", "--quiet")
    assert code == 0, err
    rows = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows if "loss" in r)
    run = load_run(tmp_path / "run")
    assert run.cfg.latent_size == 2**3 * 4 and torch.isfinite(run.model.origin.rho)
    names, points, sdf, centers, scales = training_shapes(run.cfg, 2)
    z = encode_shapes(run.model, points, sdf)
    assert z.shape == (2, 32) and torch.isfinite(z).all()
