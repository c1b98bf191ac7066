"""The timed parts of gpu_check.py: matmul peaks, the training step against the paper's, and
rendering through every backend. Each function takes the device and the sizes, so the CPU dry
run goes through the same code at tiny sizes.

Memory: `peak_memory` is torch's own peak (torch paths); onnxruntime allocates outside torch, so
its figure is the growth of the device's used memory (cudaMemGetInfo) over the call, which its
arenas keep until the session closes. On the CPU neither is measured (None).
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from inr_gon.config import Config
from inr_gon.export.onnx import DecoderGraph, decoder_proto, save_onnx
from inr_gon.export.runtime import decode_points, open_session
from inr_gon.models.gon import GON
from inr_gon.models.render import DEFAULT_MAX_MEMORY, grid, render_images
from inr_gon.training.step import Stepper, compiled

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from reference_gon import ReferenceSiren, reference_step  # noqa: E402
from train_step import flops  # noqa: E402

MATMUL_DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
                 "fp16": torch.float16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_tf32(on: bool) -> None:
    """TF32 is a process-wide switch: every timed call sets the one it means."""
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def seconds(fn: Callable[[], object], device: torch.device, repeats: int,
            warmup: bool = True) -> list[float]:
    """Wall-clock seconds of `repeats` calls (after one warm-up call), each waited for."""
    if warmup:
        fn()
    out = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def peak_memory(fn: Callable[[], object], device: torch.device, torch_alloc: bool = True) -> int | None:
    """Bytes: torch's peak during fn (torch_alloc), else the device's used-memory growth."""
    if device.type != "cuda":
        fn()
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    free0 = torch.cuda.mem_get_info(device)[0]
    fn()
    sync(device)
    if torch_alloc:
        return int(torch.cuda.max_memory_allocated(device))
    return int(free0 - torch.cuda.mem_get_info(device)[0])


def matmul_peaks(device: torch.device, n: int, repeats: int = 5) -> dict[str, float]:
    """FLOP/s of an n x n x n matmul per precision: the best of `repeats` (the peak)."""
    peaks = {}
    for name, dtype in MATMUL_DTYPES.items():
        set_tf32(name == "tf32")
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        peaks[name] = 2 * n**3 / min(seconds(lambda: a @ b, device, repeats))  # noqa: B023
    set_tf32(False)
    return peaks


# ---- the training step against the paper's step -------------------------------------------------

STEP_VARIANTS = {"inr-gon fp32": {}, "inr-gon tf32": {"precision": "tf32"},
                 "inr-gon bf16": {"precision": "bf16"},
                 "inr-gon fp32 compiled": {"compile": True}}
PEAK_OF = {"paper's step fp32": "fp32", "inr-gon fp32": "fp32", "inr-gon tf32": "tf32",
           "inr-gon bf16": "bf16", "inr-gon fp32 compiled": "fp32"}


def step_makers(cfg: Config, coords: Tensor, x: Tensor, device: torch.device,
                compile_ok: bool) -> dict[str, Callable[[], object]]:
    """name -> one training step with its own model and Adam: the paper's (reference_gon.py,
    torch defaults) and inr-gon's Stepper, as `inr-gon train` runs it, per precision."""
    b, n, c = x.shape
    torch.manual_seed(0)
    ref = ReferenceSiren(GON(cfg).decoder).to(device)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-4)
    c_b = coords.expand(b, n, -1).contiguous()  # the original stacks one grid per item
    steps = {"paper's step fp32": lambda: (set_tf32(False), reference_step(ref, ref_opt, c_b, x, b * c / n))}
    for name, change in STEP_VARIANTS.items():
        if change.get("compile") and not compile_ok:
            continue
        vcfg = cfg.replace(**change)
        torch.manual_seed(0)
        model = GON(vcfg).to(device)
        stepper = Stepper(model, torch.optim.Adam(model.parameters(), lr=1e-4), vcfg, device)
        tf32 = vcfg.train.precision == "tf32"
        steps[name] = lambda s=stepper, t=tf32: (set_tf32(t), s(coords, x, None, 1e-4))
    return steps


def time_steps(cfg: Config, coords: Tensor, x: Tensor, device: torch.device, repeats: int,
               peaks: dict[str, float], compile_ok: bool) -> dict[str, dict]:
    """Median seconds per step, variants alternating within each round; the ratio to the
    paper's step; FLOP/s as a fraction of the matmul peak of the variant's precision."""
    steps = step_makers(cfg, coords, x, device, compile_ok)
    torch.manual_seed(0)
    counted = {"paper's step fp32": flops(steps["paper's step fp32"]),
               "inr-gon": flops(steps["inr-gon fp32"])}
    memory = {k: peak_memory(fn, device) for k, fn in steps.items()}  # also the warm-up
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for k, fn in steps.items():
            times[k] += seconds(fn, device, 1, warmup=False)
    set_tf32(False)
    ref = times["paper's step fp32"]
    out = {}
    for k, ts in times.items():
        med = statistics.median(ts)
        f = counted["paper's step fp32"] if k.startswith("paper") else counted["inr-gon"]
        out[k] = {"median_seconds": med, "seconds": ts,
                  "ratio_to_paper": statistics.median([r / t for r, t in zip(ref, ts)]),
                  "flops_per_step": f, "fraction_of_peak": f / med / peaks[PEAK_OF[k]],
                  "peak_of": PEAK_OF[k], "peak_memory_bytes": memory[k]}
    return out


# ---- rendering ------------------------------------------------------------------------------------

def torch_fp32(decoder, device: torch.device) -> Callable[[Tensor, int], np.ndarray]:
    """The product path: inr_gon.render.render_images with the decoder on the device."""
    dec = copy.deepcopy(decoder).to(device).eval()
    return lambda z, s: (set_tf32(False), render_images(dec, z.to(device), s, s))[1]


def torch_compiled_fp32(decoder, device: torch.device) -> Callable[[Tensor, int], np.ndarray]:
    """render_images with the decoder compiled (each chunk shape compiles once)."""
    dec = compiled(copy.deepcopy(decoder).to(device).eval())
    return lambda z, s: (set_tf32(False), render_images(dec, z.to(device), s, s))[1]


class _GraphDecoder(torch.nn.Module):
    """The exported graph's module with the decoder's call F(coords [N, d], z [B, D]) and its
    `out` layer (render sizes its chunks from it), so render_images can run it."""

    def __init__(self, decoder, graph) -> None:
        super().__init__()
        self.graph, self.out = graph, decoder.out

    def forward(self, coords: Tensor, z: Tensor) -> Tensor:
        return self.graph(coords[None], z)


def torch_graph(decoder, device: torch.device, fp16: bool, compile_it: bool = False,
                max_memory: int = DEFAULT_MAX_MEMORY):
    """The exported graph's module (export/onnx.py DecoderGraph: w0 folded, fp16 hidden layers
    with the first layer in fp32) run by torch through the product's render_images. The product
    has no fp16 torch render path; this is what torch does with the fp16 design."""
    graph = DecoderGraph(decoder.cpu(), fp16).to(device).eval()
    dec = _GraphDecoder(decoder, compiled(graph) if compile_it else graph).to(device)
    return lambda z, s: render_images(dec, z.to(device), s, s, max_memory)


def onnx_session_renderer(decoder, device: torch.device, fp16: bool, tensorrt: bool, tmp: str,
                          max_memory: int = DEFAULT_MAX_MEMORY):
    """export -> onnxruntime session on the device's provider (CUDA, or TensorRT) -> the
    product's decode_points, whose every call binds its inputs and output (I/O binding)."""
    path = Path(tmp) / f"decoder_{'fp16' if fp16 else 'fp32'}.onnx"
    if not path.exists():
        save_onnx(decoder_proto(decoder.cpu(), fp16), path)
    s = open_session(path, device, tensorrt=tensorrt, exact=not fp16, quiet=True)
    if device.type == "cuda" and s.provider == "CPUExecutionProvider":  # hours at 4096x4096
        raise RuntimeError("onnxruntime has no working CUDA provider here")
    if tensorrt and s.provider != "TensorrtExecutionProvider":  # listed, but its libraries are absent
        raise RuntimeError(f"TensorRT did not load (the session runs on {s.provider})")
    hidden = decoder.out.in_features

    def render(z: Tensor, size: int) -> np.ndarray:
        out = decode_points(s, grid(size, size).numpy(), z.cpu().numpy(), hidden, max_memory)
        return out.clip(0, 1).reshape(z.shape[0], size, size, -1)

    return render, s.provider


def render_backends(device: torch.device, compile_ok: bool, tensorrt: bool,
                    big: int = DEFAULT_MAX_MEMORY) -> list[tuple]:
    """(backend, precision, maker(decoder, tmp) -> (render, provider or None)). `big`: the
    --max-memory of the extra fp16 rows with larger chunks (fewer launches and copies)."""
    rows = [("torch eager", "fp32", lambda d, t: (torch_fp32(d, device), None)),
            ("torch eager", "fp16", lambda d, t: (torch_graph(d, device, True), None))]
    if compile_ok:
        rows += [("torch.compile", "fp32", lambda d, t: (torch_compiled_fp32(d, device), None)),
                 ("torch.compile", "fp16", lambda d, t: (torch_graph(d, device, True, True), None))]
    for fp16 in (False, True):
        rows.append(("onnxruntime", "fp16" if fp16 else "fp32",
                     lambda d, t, f=fp16: onnx_session_renderer(d, device, f, False, t)))
    if big != DEFAULT_MAX_MEMORY:
        chunks = f"{big / 2**20:.0f} MiB chunks"
        rows.append((f"torch eager, {chunks}", "fp16",
                     lambda d, t: (torch_graph(d, device, True, max_memory=big), None)))
        if compile_ok:
            rows.append((f"torch.compile, {chunks}", "fp16",
                         lambda d, t: (torch_graph(d, device, True, True, max_memory=big), None)))
        rows.append((f"onnxruntime, {chunks}", "fp16",
                     lambda d, t: onnx_session_renderer(d, device, True, False, t, big)))
    if tensorrt:
        for fp16 in (False, True):
            rows.append(("onnxruntime TensorRT", "fp16" if fp16 else "fp32",
                         lambda d, t, f=fp16: onnx_session_renderer(d, device, f, True, t)))
    return rows


def time_renders(decoder, z: Tensor, size: int, device: torch.device, repeats: int,
                 peaks: dict[str, float], compile_ok: bool, tensorrt: bool,
                 big: int = DEFAULT_MAX_MEMORY) -> list[dict]:
    """Each backend renders size x size for latents z [B, D]: coordinates/s, fraction of the
    matmul peak of its precision, peak memory, and max |difference| to torch eager fp32."""
    decoder = copy.deepcopy(decoder).cpu().eval()
    flops_per_coord = decoder.flops_per_point()
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for backend, precision, make in render_backends(device, compile_ok, tensorrt, big):
            row = {"backend": backend, "precision": precision}
            try:
                render, provider = make(decoder, tmp)
                image: list[np.ndarray] = []
                t0 = time.perf_counter()
                mem = peak_memory(lambda: image.append(render(z, size)), device,  # noqa: B023
                                  torch_alloc=backend.startswith("torch"))
                row["first_call_seconds"] = time.perf_counter() - t0  # compiles, builds engines
                ts = seconds(lambda: render(z, size), device, repeats, warmup=False)  # noqa: B023
            except Exception as e:  # a backend that fails here is reported, the others still run
                row["error"] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
                rows.append(row)
                continue
            rate = z.shape[0] * size * size / statistics.median(ts)
            reference = image[0] if reference is None else reference  # torch eager fp32 comes first
            row.update(provider=provider, seconds=ts, coords_per_s=rate,
                       fraction_of_peak=rate * flops_per_coord / peaks[precision],
                       peak_memory_bytes=mem,
                       max_abs_diff=float(np.abs(image[0] - reference).max()),
                       mean_abs_diff=float(np.abs(image[0] - reference).mean()))
            rows.append(row)
    set_tf32(False)
    return rows
