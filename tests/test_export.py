"""ONNX export: decoder graphs against torch, metadata, files, and the `inr-gon export` command."""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from test_cli import assert_input_error, run_cli

from inr_gon import __version__
from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.export.info import read_info
from inr_gon.export.onnx import decoder_proto, save_onnx, trace
from inr_gon.models.gon import GON
from inr_gon.models.render import grid
from inr_gon.run import load_run, save_model


def session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("modality,channels", [("image", 3), ("sdf", 1)])
def test_decoder_graph_matches_torch_for_any_batch_and_points(modality, channels):
    torch.manual_seed(0)
    cfg = Config.of(modality=modality, channels=channels, hidden=32, layers=4, latent_dim=5)
    dec = GON(cfg).decoder.eval()
    d = cfg.coord_dim
    s = session(decoder_proto(dec))
    for b, n in [(1, 1), (3, 77), (6, 400)]:
        coords, z = torch.rand(b, n, d) * 2 - 1, torch.randn(b, 5) * 3
        with torch.no_grad():
            ref = dec(coords, z)
        got = s.run(None, {"coords": coords.numpy(), "latent": z.numpy()})[0]
        assert got.shape == (b, n, channels)
        assert np.abs(got - ref.numpy()).max() < 1e-5
        shared = s.run(None, {"coords": coords[:1].numpy(), "latent": z.numpy()})[0]  # one grid for all
        with torch.no_grad():
            assert np.abs(shared - dec(coords[0], z).numpy()).max() < 1e-5


def test_fp16_graph_keeps_float32_io_and_stays_close():
    torch.manual_seed(0)
    dec = GON(Config.of(hidden=32, layers=3, latent_dim=4)).decoder.eval()
    proto = decoder_proto(dec, fp16=True)
    io = [t.type.tensor_type.elem_type for t in [*proto.graph.input, *proto.graph.output]]
    assert io == [onnx.TensorProto.FLOAT] * 3
    halves = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) == 2 * 2 + 2  # hidden weights and biases, output layer; the first stays fp32
    coords, z = grid(16, 16)[None], torch.randn(2, 4)
    got = session(proto).run(None, {"coords": coords.numpy(), "latent": z.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - dec(coords, z).numpy()).max() < 2e-2


def test_export_writes_one_checked_file_with_metadata(make_run, capsys):
    run = make_run()
    code, out, err = run_cli(capsys, "export", run)
    assert code == 0, err
    assert "ok" in out and "disagrees" not in out
    files = sorted(p.name for p in run.iterdir() if "onnx" in p.name)
    assert files == ["decoder.onnx"]  # one self-contained file, no .data sidecar
    info = read_info(run / "decoder.onnx")
    cfg = load_run(run).cfg
    assert info.kind == "decoder" and info.cfg == cfg and info.precision == "fp32"
    assert info.meta["inr_gon.version"] == __version__
    assert info.meta["inr_gon.modality"] == "image" and "(y, x)" in info.meta["inr_gon.coordinates"]
    latents = np.array(json.loads(info.meta["inr_gon.example_latents"]))
    assert latents.shape == (4, cfg.net.latent_dim)  # the checked training items, for torch-free use
    # from a session already open (the runtime's, so the file is loaded once): the same
    sess = ort.InferenceSession(str(run / "decoder.onnx"), providers=["CPUExecutionProvider"])
    opened = read_info(run / "decoder.onnx", session=sess)
    assert (opened.kind, opened.cfg, opened.meta) == (info.kind, info.cfg, info.meta)
    model = onnx.load(str(run / "decoder.onnx"))
    assert [i.name for i in model.graph.input] == ["coords", "latent"]
    assert [o.name for o in model.graph.output] == ["values"]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["coords_batch", "points", 2]
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "points", 3]


def test_export_with_encoder_and_fp16(make_run, capsys, tmp_path):
    run = make_run(variational=True)
    out = tmp_path / "x" / "half.onnx"
    code, stdout, err = run_cli(capsys, "export", run, "--fp16", "--with-encoder", "--out", out)
    assert code == 0, err
    assert {p.name for p in out.parent.iterdir()} == {"half.onnx", "half_encoder.onnx",
                                                      "half_encoder_grid.onnx"}
    assert read_info(out).precision == "fp16"
    assert "PSNR drop" in stdout
    assert read_info(out.parent / "half_encoder.onnx").kind == "encoder"
    grid_info = read_info(out.parent / "half_encoder_grid.onnx")
    assert grid_info.kind == "encoder_grid" and grid_info.meta["inr_gon.grid"] == "8x8"
    ops = [n.op_type for n in onnx.load(str(out.parent / "half_encoder_grid.onnx")).graph.node]
    assert ops.count("MatMul") == 1 and ops.count("Add") == 1 and len(ops) <= 3


def test_export_of_an_sdf_run_without_its_data(make_run, capsys):
    run = make_run(modality="sdf", channels=1, data="/no/such/meshes")
    code, out, err = run_cli(capsys, "export", run, "--with-encoder")
    assert code == 0, err
    assert "random inputs only" in err and "encoder_grid.onnx not written" in err
    assert read_info(run / "encoder.onnx").cfg.coord_dim == 3
    dims = onnx.load(str(run / "decoder.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_value == 3


def test_a_failed_check_exits_1_and_keeps_the_old_file(make_run, capsys, monkeypatch):
    run = make_run()
    assert run_cli(capsys, "export", run)[0] == 0
    before = (run / "decoder.onnx").read_bytes()
    monkeypatch.setattr("inr_gon.export.check.TOL", -1.0)  # nothing can pass
    code, _, err = run_cli(capsys, "export", run, "--quiet")
    assert code == 1 and err.startswith("error: decoder.onnx disagrees with torch")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (run / "decoder.onnx").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.startswith(".export-")]


def test_export_errors(make_run, capsys, tmp_path, monkeypatch):
    code, _, err = run_cli(capsys, "export", tmp_path)
    assert_input_error(code, err, "not a run")
    run = make_run()
    code, _, err = run_cli(capsys, "export", run, "--out", tmp_path / "decoder.txt")
    assert_input_error(code, err, ".onnx")
    conv = tmp_path / "conv"
    conv.mkdir()
    (conv / "config.json").write_text(Config.of(model="conv").to_json())
    code, _, err = run_cli(capsys, "export", conv)
    assert_input_error(code, err, "only GON and local runs")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if neither extra were installed
    code, _, err = run_cli(capsys, "export", run)
    assert_input_error(code, err, "inr-gon[cpu]", "inr-gon[gpu]")


def test_files_that_are_not_ours(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 not a protobuf \xff" * 10)
    with pytest.raises(InputError, match="not an ONNX file"):
        read_info(tmp_path / "junk.onnx")
    foreign = trace(torch.nn.Linear(2, 3), (torch.rand(4, 2),), ["x"], "y", {"x": {0: "n"}})
    save_onnx(foreign, tmp_path / "foreign.onnx")
    with pytest.raises(InputError, match="not an inr-gon ONNX file"):
        read_info(tmp_path / "foreign.onnx")


def test_models_over_the_limit_keep_weights_beside(tmp_path):
    torch.manual_seed(0)
    dec = GON(Config.of(hidden=16, layers=2, latent_dim=4)).decoder.eval()
    proto = decoder_proto(dec)
    files = save_onnx(proto, tmp_path / "big.onnx", limit=0)  # as if over 2 GB
    assert [f.name for f in files] == ["big.onnx", "big.onnx.data"]
    s = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    coords, z = torch.rand(1, 9, 2), torch.randn(2, 4)
    with torch.no_grad():
        ref = dec(coords, z).numpy()
    assert np.abs(s.run(None, {"coords": coords.numpy(), "latent": z.numpy()})[0] - ref).max() < 1e-5


def test_stale_and_foreign_exports_on_load(make_run, capsys):
    from inr_gon.export.runtime import onnx_renderer

    run, other = make_run(), make_run("other", hidden=24)
    assert run_cli(capsys, "export", run, "--quiet")[0] == 0
    assert run_cli(capsys, "export", other, "--quiet")[0] == 0
    torch.manual_seed(5)
    r = load_run(run)
    save_model(run, GON(r.cfg))  # trained on after the export
    onnx_renderer(load_run(run), quiet=True)
    assert "older weights" in capsys.readouterr().err
    with pytest.raises(InputError, match="another run"):
        onnx_renderer(load_run(run), other / "decoder.onnx")


def test_fp16_that_overflows_is_refused(make_run, capsys):
    run = make_run()
    r = load_run(run)
    with torch.no_grad():
        r.model.decoder.out.bias.fill_(1e5)  # outputs beyond fp16's 65504; latents unchanged
    save_model(run, r.model)
    code, _, err = run_cli(capsys, "export", run, "--fp16", "--quiet")
    assert code == 1 and "non-finite values" in err and "not written" in err
    assert not (run / "decoder.onnx").exists()
    assert run_cli(capsys, "export", run, "--quiet")[0] == 0  # float32 is fine with the same weights


def test_int8_export_quantises_the_hidden_products_only(make_run, capsys):
    run = make_run(modulation="all", latent_grid=2, hidden=32)
    code, stdout, err = run_cli(capsys, "export", run, "--int8")
    assert code == 0, err
    path = run / "decoder_int8.onnx"
    assert read_info(path).precision == "int8" and "PSNR drop" in stdout
    assert not (run / "decoder.onnx").exists()  # beside the fp32 file, never instead of it
    r = load_run(run)
    graph = onnx.load(str(path)).graph
    # the [32, 32] products of the two hidden layers; not the first layer's, the shifts' or the output's
    assert [n.op_type for n in graph.node].count("MatMulInteger") == r.cfg.net.layers - 1
    int8 = [tuple(t.dims) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert [d for d in int8 if len(d) == 2] == [(32, 32)] * (r.cfg.net.layers - 1)  # + zero points
    torch.manual_seed(0)
    coords, z = grid(8, 8), torch.randn(2, r.cfg.latent_size)
    got = session(onnx.load(str(path))).run(None, {"coords": coords[None].numpy(), "latent": z.numpy()})[0]
    with torch.no_grad():
        ref = r.model.decoder(coords, z).numpy()
    assert 0 < np.abs(got - ref).max() < 0.05 * np.abs(ref).max()  # rounded, and close
    code, _, err = run_cli(capsys, "export", run, "--int8", "--fp16")
    assert_input_error(code, err, "not both")
    assert run_cli(capsys, "export", run, "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "export", run, "--int8", "--out", run / "decoder.onnx")
    assert_input_error(code, err, "never replaces", "decoder_int8.onnx")
    code, _, err = run_cli(capsys, "render", run, "--backend", "onnx", "--decoder", path, "-n", "2",
                           "--out", run / "views")
    assert code == 0, err


@pytest.mark.parametrize("fields", [
    {"modulation": "all"},
    {"latent_grid": 3, "latent_dim": 2},
    {"modulation": "all", "latent_grid": 4, "latent_dim": 2},
    {"modality": "sdf", "channels": 1, "modulation": "all", "latent_grid": 2, "latent_dim": 2},
])
def test_decoder_graph_interpolates_latent_grids_and_modulates_every_layer(fields):
    torch.manual_seed(0)
    cfg = Config.of(**{"hidden": 32, "layers": 3, "latent_dim": 5, "height": 8, "width": 8, **fields})
    dec = GON(cfg).decoder.eval()
    s = session(decoder_proto(dec))
    for b, n in [(1, 1), (3, 77)]:
        coords = torch.rand(b, n, cfg.coord_dim) * 2.2 - 1.1  # a little outside [-1, 1] too
        z = torch.randn(b, cfg.latent_size)
        with torch.no_grad():
            ref = dec(coords, z)
        got = s.run(None, {"coords": coords.numpy(), "latent": z.numpy()})[0]
        assert got.shape == (b, n, cfg.out_dim) and np.abs(got - ref.numpy()).max() < 1e-5
        shared = s.run(None, {"coords": coords[:1].numpy(), "latent": z.numpy()})[0]
        with torch.no_grad():
            assert np.abs(shared - dec(coords[0], z).numpy()).max() < 1e-5


def test_export_of_a_gauss_newton_grid_run(make_run, capsys):
    """encoder_grid.onnx of a Gauss-Newton run with a latent grid is still one MatMul + Add,
    checked against torch; the general encoder is refused with a warning (ONNX has no solve)."""
    run = make_run(origin_step="gauss-newton", latent_grid=2, modulation="all")
    code, out, err = run_cli(capsys, "export", run, "--with-encoder")
    assert code == 0, err
    assert "encoder.onnx not written" in err and "ok" in out
    assert not (run / "encoder.onnx").exists()
    ops = [n.op_type for n in onnx.load(str(run / "encoder_grid.onnx")).graph.node]
    assert ops.count("MatMul") == 1 and ops.count("Add") == 1 and len(ops) <= 3
    r = load_run(run)
    values = torch.rand(2, 64, 3)
    with torch.no_grad():
        ref = r.model.encode(grid(8, 8), values).numpy()
    got = session(onnx.load(str(run / "encoder_grid.onnx"))).run(None, {"values": values.numpy()})[0]
    assert got.shape == (2, 16) and np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_export_of_a_conjugate_gradient_sdf_run_refuses_its_general_encoder(make_run, capsys):
    """gauss-newton-cg has no solve, but 16 float32 CG iterations in onnxruntime drift ~1e-3
    from torch's (rounding, amplified by the iteration): above the check's 1e-4, so the general
    encoder is not written, with a warning; the decoder is."""
    run = make_run(modality="sdf", channels=1, data="/no/such/meshes", latent_grid=2,
                   latent_dim=3, modulation="all", origin_step="gauss-newton-cg")
    code, out, err = run_cli(capsys, "export", run, "--with-encoder")
    assert code == 0, err
    assert "encoder.onnx not written" in err and (run / "decoder.onnx").exists()
    assert not (run / "encoder.onnx").exists()
