"""ONNX backend of a local (super-resolution) run: `export` writes the local decoder's graph
(export/local.py), and `render RUN photo.png --scale S --backend onnx` decodes through it while
the step's linear algebra stays in torch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from cli_helpers import assert_input_error, cli_exit, run_cli
from imageio.v3 import imread
from test_local import TINY

from inr_gon.export.info import read_info
from inr_gon.export.local import local_decoder_proto, local_feeds, onnx_local_decoder
from inr_gon.inference.superres import TILE, upscale_photo
from inr_gon.io import write_png
from inr_gon.models.local import LocalDecoder
from inr_gon.models.local_geometry import Geometry
from inr_gon.run import load_run


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """A tiny trained local run with a chord step after the first, exported once."""
    run = tmp_path_factory.mktemp("local") / "run"
    assert cli_exit("train", "builtin:shapes:48", *TINY, "--inner-steps", "2", "--out", run) == 0
    assert cli_exit("export", run, "--device", "cpu", "--quiet") == 0
    return run


def photo(h: int = 40, w: int = 37, seed: int = 0) -> np.ndarray:
    """A smooth ramp with noise on it: flat parts, edges and texture."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, h * w * 3, dtype=np.float32).reshape(h, w, 3)
    return np.clip(ramp + 0.2 * rng.standard_normal((h, w, 3)).astype(np.float32), 0, 1)


@pytest.mark.parametrize("activation, basis", [("gelu", "quadratic"), ("sine", "quadratic"),
                                               ("gelu", "wide"), ("gelu", "pyramid")])
def test_the_local_graph_matches_torch_for_any_batch_and_geometry(activation, basis):
    torch.manual_seed(0)
    dec = LocalDecoder(4, 3, 16, 3, activation, basis=basis).eval()
    s = ort.InferenceSession(local_decoder_proto(dec).SerializeToString(),
                             providers=["CPUExecutionProvider"])
    cases = [((13, 11), (5, 4), 1), ((64, 48), (16, 12), 3), ((4, 4), (1, 1), 2)]
    for out_hw, in_hw, b in cases:
        geo = Geometry.of(out_hw, in_hw, basis=basis)
        geo = geo.window(slice(1, out_hw[0]), slice(0, out_hw[1] - 1))  # a block, as tiles render
        z = torch.randn(b, in_hw[0] * in_hw[1], 4)
        got = s.run(None, local_feeds(geo, z))[0]
        with torch.no_grad():
            ref = dec(geo, z).numpy()
        assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-5


def test_export_of_a_local_run_writes_a_checked_decoder(local_run):
    info = read_info(local_run / "decoder.onnx", ("decoder",))
    assert info.cfg.net.model == "local" and info.precision == "fp32"
    assert "inr_gon.weights_sha256" in info.meta
    r = load_run(local_run)
    decode = onnx_local_decoder(r, quiet=True)
    geo = r.model.geometry((30, 26), (7, 6))  # not the training geometry
    z = torch.randn(2, 42, r.model.decoder.latent_dim) * 3
    with torch.no_grad():
        assert (decode(geo, z) - r.model.decoder(geo, z)).abs().max() < 1e-5


def test_upscale_photo_through_onnx_equals_torch(local_run):
    r = load_run(local_run)
    assert r.model.steps == 2
    x = photo()
    ref = upscale_photo(r, x, (4 * x.shape[0], 4 * x.shape[1]))
    onnx, calls = onnx_local_decoder(r, quiet=True), []

    def decode(geo, codes):
        calls.append(geo.out_hw == (4 * TILE, 4 * TILE))  # a whole tile: the chord step's decode
        return onnx(geo, codes)

    got = upscale_photo(r, x, ref.shape[:2], decode=decode)
    assert any(calls) and not all(calls)  # the chord step and the render both went through it
    assert got.shape == ref.shape == (160, 148, 3)
    assert np.abs(got - ref).max() < 1e-4
    frac = upscale_photo(r, x, (100, 92))  # 2.5x: each tile at its own phase
    assert np.abs(upscale_photo(r, x, (100, 92), decode=onnx) - frac).max() < 1e-4


def test_render_scale_backend_onnx_equals_the_torch_png(local_run, tmp_path, capsys):
    write_png(tmp_path / "p.png", photo(44, 35, seed=1))
    pngs = {}
    for backend in ("torch", "onnx"):
        code, _, err = run_cli(capsys, "render", local_run, tmp_path / "p.png", "--scale", "4",
                               "--backend", backend, "--out", tmp_path / backend, "--quiet")
        assert code == 0, err
        pngs[backend] = imread(tmp_path / backend / "p.png").astype(int)
    assert pngs["onnx"].shape == (176, 140, 3)
    assert np.abs(pngs["onnx"] - pngs["torch"]).max() <= 1


def test_saved_photo_codes_render_through_onnx_as_through_torch(local_run, tmp_path, capsys):
    """`fit --whole --out` codes, then `render --latents` by each backend: within one level."""
    write_png(tmp_path / "p.png", photo(44, 35, seed=2))
    z = tmp_path / "z.safetensors"
    assert run_cli(capsys, "fit", local_run, tmp_path / "p.png", "--whole", "--scale", "2",
                   "--out", z, "--quiet")[0] == 0
    pngs = {}
    for backend in ("torch", "onnx"):
        code, _, err = run_cli(capsys, "render", local_run, "--latents", z, "--backend", backend,
                               "--out", tmp_path / backend, "--quiet")
        assert code == 0, err
        pngs[backend] = imread(tmp_path / backend / "p.png").astype(int)
    assert pngs["onnx"].shape == (88, 70, 3)
    assert np.abs(pngs["onnx"] - pngs["torch"]).max() <= 1


@pytest.mark.parametrize("args, words", [
    (["export", "R", "--fp16"], ["--fp16", "float32"]),
    (["export", "R", "--int8"], ["--int8", "float32"]),
    (["export", "R", "--with-encoder"], ["--with-encoder", "linear system"]),
    (["render", "R", "P", "--scale", "4", "--backend", "onnx", "--fp16"], ["--fp16", "float32"]),
    (["render", "R", "P", "--scale", "4", "--backend", "onnx", "--decoder", "nope.onnx"], ["nope.onnx"]),
    (["render", "R", "P", "--scale", "4", "--backend", "onnx", "--latents", "z.safetensors"], ["--latents"]),
    (["render", "R", "--backend", "onnx"], ["local run", "--scale"]),
])
def test_bad_onnx_combinations_for_a_local_run_are_one_line(local_run, tmp_path, capsys, args, words):
    write_png(tmp_path / "p.png", photo(8, 8))
    args = [local_run if a == "R" else tmp_path / "p.png" if a == "P" else a for a in args]
    out = ["--out", tmp_path / ("x.onnx" if args[0] == "export" else "o")]
    code, _, err = run_cli(capsys, *args, *out)
    assert_input_error(code, err, *words)


def test_a_gon_run_still_renders_whole_photos_with_torch_only(make_run, tmp_path, capsys):
    run = make_run()
    write_png(tmp_path / "p.png", photo(8, 8))
    code, _, err = run_cli(capsys, "render", run, tmp_path / "p.png", "--scale", "2",
                           "--backend", "onnx", "--out", tmp_path / "o")
    assert_input_error(code, err, "torch backend")


def test_the_numpy_example_refuses_a_local_decoder_in_one_line(local_run, tmp_path):
    script = Path(__file__).resolve().parents[1] / "examples" / "onnx_render.py"
    p = subprocess.run([sys.executable, str(script), str(local_run / "decoder.onnx"), "--latents",
                        str(tmp_path / "z.safetensors"), "--out", str(tmp_path / "o.png")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.strip().startswith("error: ") and "--scale" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
