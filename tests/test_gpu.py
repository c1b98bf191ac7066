"""Every CUDA path against the CPU path (`pytest -m gpu`; each skips without CUDA, with a reason).

Tolerances are those of benchmarks/gpu_check.py, which runs the same paths at full size:
fp32 gradients 1e-4 relative, TF32 1e-2, bf16 autocast 1e-1; renders 1e-4 (fp32) absolute.
"""

import copy

import numpy as np
import pytest
import torch
import torch.distributed as dist
from cli_helpers import run_cli

from inr_gon import load_run
from inr_gon.config import Config
from inr_gon.device import configure
from inr_gon.export.build import export_run
from inr_gon.export.onnx import decoder_proto, save_onnx
from inr_gon.export.runtime import decode_points, open_session
from inr_gon.models.gon import GON
from inr_gon.models.render import grid, render_images
from inr_gon.training.step import Stepper
from inr_gon.training.train import read_metrics, train

CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="no CUDA device here")]

CFG = Config.of(data="builtin:shapes", height=8, width=8, channels=3, hidden=32, layers=3, latent_dim=8,
                batch_size=4, steps=6, log_every=2, preview_every=0, checkpoint_every=0, val_fraction=0.25)


def batch(cfg: Config = CFG):
    torch.manual_seed(1)
    h, w = cfg.size
    return grid(h, w), torch.rand(cfg.train.batch_size, h * w, cfg.summary.channels)


def step_grads(cfg: Config, device: str) -> torch.Tensor:
    """Weight gradients of one training step (the Stepper at lr 0) from seed-0 weights."""
    coords, values = batch(cfg)
    torch.manual_seed(0)
    model = GON(cfg).to(device)
    if device == "cuda":
        configure(cfg, torch.device(device))  # as train() does: TF32 for precision tf32
    try:
        step = Stepper(model, torch.optim.Adam(model.parameters()), cfg, torch.device(device))
        step(coords.to(device), values.to(device), None, 0.0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return torch.cat([p.grad.flatten().double().cpu() for p in model.parameters()])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_fp32_step_gradients_on_cuda_equal_cpu():
    assert rel(step_grads(CFG, "cuda"), step_grads(CFG, "cpu")) < 1e-4


@pytest.mark.parametrize("precision, tol", [("tf32", 1e-2), ("bf16", 1e-1)])
def test_reduced_precision_gradients_close_to_fp32(precision, tol):
    got = step_grads(CFG.replace(precision=precision), "cuda")
    assert rel(got, step_grads(CFG, "cpu")) < tol


def test_compiled_step_on_cuda_matches_eager():
    assert rel(step_grads(CFG.replace(compile=True), "cuda"), step_grads(CFG, "cuda")) < 1e-4


def test_short_training_on_cuda_follows_cpu(tmp_path):
    curves = {}
    for device in ("cpu", "cuda"):
        train(CFG.replace(device=device), tmp_path / device, quiet=True)
        curves[device] = [r["loss"] for r in read_metrics(tmp_path / device) if "loss" in r]
    assert len(curves["cuda"]) == len(curves["cpu"]) == 3
    assert np.allclose(curves["cuda"], curves["cpu"], rtol=2e-2)


def test_nccl_single_rank_all_reduce_and_ddp_gradient(tmp_path):
    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'rdzv'}", rank=0, world_size=1,
                            device_id=torch.device("cuda", 0))
    try:
        x = torch.full((4,), 3.0, device="cuda")
        dist.all_reduce(x)
        assert torch.equal(x.cpu(), torch.full((4,), 3.0))
        coords, values = (t.cuda() for t in batch())
        torch.manual_seed(0)
        plain = GON(CFG).cuda()
        wrapped = copy.deepcopy(plain)
        ddp = torch.nn.parallel.DistributedDataParallel(wrapped, device_ids=[0])
        for m in (plain, ddp):
            m(coords, values)["loss"].backward()
        g = [torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (plain, wrapped)]
        assert rel(g[1], g[0]) < 1e-6
    finally:
        dist.destroy_process_group()


def test_render_on_cuda_equals_cpu():
    torch.manual_seed(0)
    dec = GON(CFG).decoder.eval()
    z = torch.randn(2, CFG.net.latent_dim)
    cpu = render_images(dec, z, 64, 48)
    cuda = render_images(copy.deepcopy(dec).cuda(), z.cuda(), 64, 48)
    assert np.abs(cuda - cpu).max() < 1e-4


def cuda_provider():
    """onnxruntime, or a skip when it cannot run on CUDA here."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (pip install 'inr-gon[gpu]')")
    return ort


@pytest.mark.parametrize("tensorrt", [False, True])
def test_onnxruntime_on_cuda_with_io_binding(tmp_path, tensorrt):
    ort = cuda_provider()
    if tensorrt and "TensorrtExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no TensorRT provider")
    torch.manual_seed(0)
    dec = GON(CFG).decoder.eval()
    save_onnx(decoder_proto(dec), tmp_path / "d.onnx")
    s = open_session(tmp_path / "d.onnx", "cuda", tensorrt=tensorrt, exact=True, quiet=True)
    if tensorrt and s.provider == "CUDAExecutionProvider":  # seen on an H200: listed, libs absent
        pytest.skip("onnxruntime lists TensorRT but its libraries do not load here")
    assert s.provider == ("TensorrtExecutionProvider" if tensorrt else "CUDAExecutionProvider")
    assert s.device_type == "cuda"  # inputs and output bound on the GPU
    coords, z = grid(32, 32), torch.randn(2, CFG.net.latent_dim)
    got = decode_points(s, coords.numpy(), z.numpy(), CFG.net.hidden)
    with torch.no_grad():
        want = dec(coords, z).numpy()
    assert np.abs(got - want).max() < (1e-3 if tensorrt else 1e-4)


def test_fp16_export_checked_on_the_gpu(make_run):
    cuda_provider()
    run = load_run(make_run(), device="cuda")
    (exported,) = export_run(run, fp16=True)
    assert exported.provider == "CUDAExecutionProvider" and exported.precision == "fp16"
    assert exported.checks and all(c.ok for c in exported.checks)


def test_train_compile_on_cuda_with_the_default_backend(tmp_path, capsys):
    """`inr-gon train --compile` with inductor, torch.compile's default backend: no fallback."""
    code, _, err = run_cli(capsys, "train", "builtin:shapes:8", "--size", "8", "--hidden", "16",
                           "--layers", "2", "--latent-dim", "4", "--steps", "3", "--batch-size",
                           "4", "--compile", "--device", "cuda", "--preview-every", "0",
                           "--out", tmp_path / "run")
    assert code == 0 and "compile failed" not in err, err
