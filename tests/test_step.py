"""The training step: bf16 autocast, torch.compile, the relative gradient clip, and the sync-free
watch for NaN losses."""

import json
import math

import pytest
import torch

from inr_gon.config import Config
from inr_gon.models.gon import GON
from inr_gon.models.render import grid
from inr_gon.training.step import FiniteGuard, NormClip, Stepper, compiled, weights_finite
from inr_gon.training.train import Loop, TrainingError, train


def model_and_batch(**kw):
    torch.manual_seed(0)
    cfg = Config.of(height=8, width=8, channels=3, hidden=32, layers=3, latent_dim=8, **kw)
    x = torch.rand(4, 64, 3, generator=torch.Generator().manual_seed(1))
    return cfg, GON(cfg), grid(8, 8), x


def grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_guard_remembers_the_first_non_finite_loss():
    g = FiniteGuard(torch.device("cpu"))
    g.update(torch.tensor(0.5), 1)
    assert g.first_bad() is None
    g.update(torch.tensor(math.nan), 2)
    g.update(torch.tensor(math.inf), 3)
    step, loss = g.first_bad()
    assert step == 2 and math.isnan(loss)
    # another rank saw step 1 go bad: its step wins; its loss value is not known here
    step, loss = g.first_bad(reduce=lambda t: torch.minimum(t, torch.tensor(1)))
    assert step == 1 and math.isnan(loss)


def test_bf16_autocast_on_cpu_is_close_to_fp32():
    cfg, model, coords, x = model_and_batch()
    out32 = model(coords, x)
    out32["loss"].backward()
    g32 = grads(model)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16 = model(coords, x)
    assert out16["pred"].dtype == torch.bfloat16  # autocast really engaged
    out16["loss"].backward()
    g16 = grads(model)
    assert torch.isclose(out16["loss"].float(), out32["loss"], rtol=0.05)
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99


def test_stepper_bf16_updates_like_fp32():
    results = []
    for precision in ("fp32", "bf16"):
        cfg, model, coords, x = model_and_batch(precision=precision)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        out = Stepper(model, opt, cfg, torch.device("cpu"))(coords, x, None, 1e-3)
        assert out["loss"].dtype == torch.float32 and out["loss"].dim() == 0
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    # one Adam step moves every weight by ~lr; bf16 may flip the sign of a few tiny gradients
    assert ((results[0] - results[1]).abs() > 1.5e-3).float().mean() < 0.05
    assert not torch.equal(results[0], results[1])  # bf16 really ran: not the fp32 step again


def test_compiled_step_gives_the_same_gradients():
    cfg, model, coords, x = model_and_batch()
    model(coords, x)["loss"].backward()
    eager = grads(model)
    model.zero_grad()
    # aot_eager: dynamo's graph capture and AOTAutograd's backward graph, without the C++
    # compile of inductor (minutes on a CPU); the benchmark times inductor itself.
    compiled(model, backend="aot_eager")(coords, x)["loss"].backward()
    assert torch.allclose(grads(model), eager, rtol=1e-5, atol=1e-7)


def poison_at(step_to_poison, deferred):
    real = Loop.train_step
    calls = []

    def step(self, step):
        self.sync_every_step = not deferred  # what a CUDA run does
        if step == step_to_poison:
            with torch.no_grad():
                self.model.decoder.out.weight.fill_(math.nan)
        calls.append(step)
        return real(self, step)

    return step, calls


@pytest.mark.parametrize("deferred", [False, True])
def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path, monkeypatch,
                                                                deferred):
    cfg = tiny_cfg.replace(steps=8, log_every=4, checkpoint_every=2, preview_every=0)
    step, calls = poison_at(2, deferred)  # the third step's loss is NaN
    monkeypatch.setattr(Loop, "train_step", step)
    with pytest.raises(TrainingError, match=r"loss became nan at step 3; the last good "
                                            r"checkpoint \(step 2\) is kept"):
        train(cfg, tmp_path / "run", quiet=True)
    # CPU: noticed at once; deferred (CUDA): at the next sync, the checkpoint step 4
    assert len(calls) == (4 if deferred else 3)
    state = json.loads((tmp_path / "run" / "train_state.json").read_text())
    assert state["step"] == 2
    from inr_gon.run import load_run

    assert weights_finite(load_run(tmp_path / "run").model)


def test_deferred_loop_syncs_only_at_log_and_checkpoint_steps(tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg.replace(steps=6, log_every=3, checkpoint_every=0, preview_every=0)
    step, _ = poison_at(-1, deferred=True)
    monkeypatch.setattr(Loop, "train_step", step)
    reads = []
    real = FiniteGuard.first_bad
    monkeypatch.setattr(FiniteGuard, "first_bad", lambda self, reduce=None: reads.append(1) or
                        real(self, reduce))
    train(cfg, tmp_path / "run", quiet=True)
    assert len(reads) == 3  # steps 3 and 6, and once after the loop


def test_non_finite_weights_are_never_saved(tiny_cfg, tmp_path):
    from types import SimpleNamespace

    from inr_gon.run import load_run

    train(tiny_cfg.replace(steps=2), tmp_path / "run", quiet=True)
    run = load_run(tmp_path / "run")
    before = (tmp_path / "run" / "train_state.safetensors").read_bytes()
    loop = Loop(run.cfg, SimpleNamespace(device=torch.device("cpu")), run.model,
                 torch.optim.Adam(run.model.parameters()), tmp_path / "run", True, 0.0)
    loop.last_saved = 2
    with torch.no_grad():
        run.model.decoder.coord.bias[0] = math.inf
    with pytest.raises(TrainingError, match=r"weights became NaN or inf by step 3; the last good "
                                            r"checkpoint \(step 2\) is kept"):
        loop.save(3, 1.0)
    assert (tmp_path / "run" / "train_state.safetensors").read_bytes() == before


def test_a_failed_compile_falls_back_to_eager_with_a_warning(monkeypatch, capsys):
    import inr_gon.training.step as step_module

    def broken(module, backend="inductor"):
        def fail(*args, **kwargs):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return fail

    monkeypatch.setattr(step_module, "compiled", broken)
    cfg, model, coords, x = model_and_batch(compile=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stepper = Stepper(model, opt, cfg, torch.device("cpu"))
    out = stepper(coords, x, None, 1e-3)
    assert torch.isfinite(out["loss"])
    assert "torch.compile failed (RuntimeError: no C++ compiler found)" in capsys.readouterr().err
    assert all(int(s["step"]) == 1 for s in opt.state.values())  # one Adam update, not two
    assert stepper.forward is model


def test_norm_clip_caps_a_spike_at_a_multiple_of_the_running_mean():
    p = torch.nn.Parameter(torch.zeros(4))
    clip = NormClip(2.0)
    norms = []
    for g in ([3.0, 4.0, 0, 0], [0, 0, 6.0, 8.0], [300.0, 400.0, 0, 0]):  # norms 5, 10, 500
        p.grad = torch.tensor(g)
        norms.append(float(clip([p])))
        if norms[-1] < 500:
            assert torch.equal(p.grad, torch.tensor(g))  # within 2x the mean: untouched
    assert norms == [5.0, 10.0, 500.0]
    mean = 0.99 * 5.0 + 0.01 * 10.0  # the mean after two steps: the cap is 2x that
    assert torch.allclose(p.grad.norm(), torch.tensor(2 * mean))
    assert torch.allclose(p.grad / p.grad.norm(), torch.tensor([0.6, 0.8, 0, 0]))  # direction kept
    assert torch.allclose(clip.mean, torch.tensor(0.99 * mean + 0.01 * 2 * mean))


def test_stepper_clips_and_reports_the_norm_and_the_loop_logs_it(tiny_cfg, tmp_path):
    cfg, model, coords, x = model_and_batch(grad_clip=1.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = Stepper(model, opt, cfg, torch.device("cpu"))(coords, x, None, 1e-3)
    assert out["grad_norm"] > 0
    assert "grad_norm" not in Stepper(model, opt, cfg.replace(grad_clip=0.0),
                                      torch.device("cpu"))(coords, x, None, 1e-3)
    train(tiny_cfg.replace(grad_clip=2.0, steps=3, log_every=1), tmp_path / "run", quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 0 for r in rows if "loss" in r)
