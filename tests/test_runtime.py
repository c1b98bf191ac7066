"""onnxruntime sessions: providers, the renderer and encoders against torch, the numpy-only example."""

import os
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from test_cli import assert_input_error, run_cli

from inr_gon.errors import InputError
from inr_gon.export.build import export_run
from inr_gon.export.runtime import (
    Session,
    decode_points,
    onnx_decoder,
    onnx_encoder,
    onnx_renderer,
    open_session,
    provider_chain,
)
from inr_gon.models.render import bytes_per_point, grid, grid3d
from inr_gon.run import load_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def exported(make_run):
    run = load_run(make_run(hidden=32, latent_init=5.0))
    export_run(run, with_encoder=True)
    return run


@pytest.mark.parametrize("threads", [1, 3])
def test_renderer_matches_torch_at_any_size_and_chunking(exported, capsys, monkeypatch, threads):
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)  # 3: concurrent slices
    render = onnx_renderer(exported)
    assert "decoder.onnx on CPUExecutionProvider" in capsys.readouterr().err  # the one line
    z = torch.randn(3, 4) * 3
    for hw in [(1, 1), (13, 21), (64, 48)]:
        ref = exported.render(z, hw)
        for budget in (1, 2**30):  # 1 byte: the smallest chunks
            got = render(z, hw, budget)
            assert got.shape == (3, *hw, 3) and got.dtype == np.float32
            assert np.abs(got - ref).max() < 1e-5


def test_decoder_for_3d_points(make_run):
    run = load_run(make_run(modality="sdf", channels=1, data="/no/such/meshes"))
    export_run(run)
    decode = onnx_decoder(run, quiet=True)
    z, pts = torch.randn(2, 4), grid3d(9)
    with torch.no_grad():
        ref = run.decoder(pts, z)
    assert torch.allclose(decode(pts, z, 1), ref, atol=1e-5)
    with pytest.raises(InputError, match="renders no images"):
        onnx_renderer(run)


def test_encoders_match_torch(exported):
    images = np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)
    ref = exported.encode(images)
    grid_encode = onnx_encoder(exported, quiet=True)  # encoder_grid.onnx is preferred
    assert torch.allclose(grid_encode(images.reshape(5, 64, 3)), ref, atol=1e-5)
    general = onnx_encoder(exported, exported.path / "encoder.onnx", quiet=True)
    assert torch.allclose(general(images), ref, atol=1e-5)
    pts = torch.rand(40, 2) * 2 - 1  # any points: the general encoder only
    with torch.no_grad():
        want = exported.model.encode(pts, torch.from_numpy(images.reshape(5, 64, 3)[:, :40]))
    assert torch.allclose(general(images.reshape(5, 64, 3)[:, :40], pts), want, atol=1e-5)
    with pytest.raises(InputError, match="training grid only"):
        grid_encode(images.reshape(5, 64, 3)[:, :40], pts)
    with pytest.raises(InputError, match="wants"):
        grid_encode(images[:, :4])


def test_encoder_missing(make_run):
    run = load_run(make_run())
    with pytest.raises(InputError, match="--with-encoder"):
        onnx_encoder(run)


def test_cuda_that_does_not_load_falls_back_to_cpu_with_a_warning(exported, capsys):
    s = open_session(exported.path / "decoder.onnx", "cuda:1")
    err = capsys.readouterr().err
    assert s.provider == "CPUExecutionProvider" and s.device_type == "cpu"
    assert "running on the CPU" in err and "on CPUExecutionProvider" in err
    chain = provider_chain(torch.device("cuda:1"), tensorrt=True, exact=True)
    assert [p[0] if isinstance(p, tuple) else p for p in chain] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert chain[1][1] == {"device_id": 1, "use_tf32": 0}
    assert provider_chain(torch.device("cpu"), tensorrt=True) == ["CPUExecutionProvider"]


def test_render_backend_onnx_equals_torch(exported, capsys, tmp_path):
    for backend in ("torch", "onnx"):
        code, _, err = run_cli(capsys, "render", exported.path, "--backend", backend, "--size", "24",
                               "-n", "2", "--out", tmp_path / backend, "--quiet", "--device", "cpu")
        assert code == 0, err
    for name in ("grid.png", *[p.name for p in (tmp_path / "torch").glob("shapes_*.png")]):
        a = iio.imread(tmp_path / "torch" / name).astype(int)
        b = iio.imread(tmp_path / "onnx" / name).astype(int)
        assert np.abs(a - b).max() <= 1


def test_render_backend_onnx_errors(make_run, capsys, tmp_path, monkeypatch):
    run = make_run()
    code, _, err = run_cli(capsys, "render", run, "--backend", "onnx")
    assert_input_error(code, err, "inr-gon export")
    (run / "decoder.onnx").write_bytes(b"this is not onnx")
    code, _, err = run_cli(capsys, "render", run, "--backend", "onnx")
    assert_input_error(code, err, "not an ONNX file")
    code, _, err = run_cli(capsys, "render", run, "--tensorrt")
    assert_input_error(code, err, "--backend onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # torch-only environment
    code, _, err = run_cli(capsys, "render", run, "--backend", "onnx")
    assert_input_error(code, err, "onnxruntime is not installed", "inr-gon[cpu]")
    with pytest.raises(InputError, match="not installed"):
        onnx_encoder(load_run(run))
    code, _, err = run_cli(capsys, "render", run, "-n", "1", "--out", tmp_path / "t", "--quiet")
    assert code == 0, err  # the torch path needs no onnxruntime


def test_numpy_only_example(exported, tmp_path):
    """examples/onnx_render.py renders the stored training latents without importing torch."""
    script = ROOT / "examples" / "onnx_render.py"
    guard = ("import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__'); "
             "assert 'torch' not in sys.modules and not any(m.startswith('inr_gon') for m in sys.modules)")
    out = tmp_path / "grid.png"
    p = subprocess.run([sys.executable, "-c", guard, str(script), str(exported.path / "decoder.onnx"),
                        "--size", "20", "--chunk", "100", "--out", str(out)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert p.returncode == 0, p.stderr
    assert "4 images at 20x20" in p.stdout
    picture = iio.imread(out)
    assert picture.shape == (2 * 22 + 2, 2 * 22 + 2, 3)
    ref = onnx_renderer(exported, quiet=True)(torch.tensor(read_example_latents(exported)), (20, 20))
    assert np.abs(picture[2:22, 2:22].astype(int) - np.round(ref[0] * 255)).max() <= 1


def read_example_latents(run):
    import json

    from inr_gon.export.info import read_info

    return json.loads(read_info(run.path / "decoder.onnx").meta["inr_gon.example_latents"])


class CountingSession(Session):
    """A session whose decoder is f(coords, z) = z[0] + y, recording (latents, points) per call."""

    def run(self, feeds):
        c, z = feeds["coords"][0], feeds["latent"]
        self.calls.append((z.shape[0], c.shape[0]))
        return (z[:, None, :1] + c[None, :, :1]).astype(np.float32)


@pytest.mark.parametrize("device,workers", [("cpu", 3), ("cuda", 1)])
def test_onnx_decode_of_many_latents_stays_within_max_memory(device, workers):
    """Issue 22 item 6 on the onnxruntime path: 1,000 latents once went in one call per slice of
    points, at least 1,024 points each (4 GiB of activations at hidden 256 on CUDA). Now every
    call holds latents x points x bytes_per_point within max_memory (shared by the workers)."""
    s = CountingSession(None, "fake", device, 0, workers)
    s.calls = []
    z, coords = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32), grid(32, 32).numpy()
    per_point, budget = 4 * 16 * (4 + 3), 4 * 2**20  # hidden 16, a grid modulating 3 layers; 4 MiB
    out = decode_points(s, coords, z, 16, budget, per_point)
    assert max(b * n for b, n in s.calls) * per_point * workers <= budget < 1000 * 1024 * per_point
    assert sum(b * n for b, n in s.calls) == 1000 * 1024  # every (latent, point) once
    np.testing.assert_array_equal(out, z[:, None, :1] + coords[None, :, :1])


def test_onnx_decoder_budgets_a_grid_latent_like_torch(make_run, monkeypatch):
    run = load_run(make_run(hidden=16, modulation="all", latent_grid=4, latent_dim=4))
    export_run(run)
    seen = []
    monkeypatch.setattr("inr_gon.export.runtime.decode_points",
                        lambda s, c, z, hidden, mem, per_point: seen.append(per_point) or np.zeros(1))
    onnx_decoder(run)(grid(4, 4), torch.zeros(2, run.cfg.latent_size))
    assert seen == [bytes_per_point(run.decoder)] and seen[0] > 16 * 16
