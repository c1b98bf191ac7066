"""onnxruntime sessions for exported files: explicit providers, I/O binding, chunked decoding.

onnxruntime and onnxruntime-gpu install the same `onnxruntime` folder, so neither is a base
dependency: the extras `[cpu]` and `[gpu]` pick one. onnxruntime-gpu lists the CUDA provider
even where CUDA cannot load and then quietly runs on the CPU, so the provider in use is read
back from the session, never assumed, and said in one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inr_gon.errors import InputError, warn
from inr_gon.export.info import (
    INSTALL,
    check_belongs,
    read_info,
    require_gon,
    require_onnxruntime,
    unloadable,
)
from inr_gon.models.render import DEFAULT_MAX_MEMORY, bytes_per_point, chunk_shape, grid

DECODER_FILE, ENCODER_FILE, GRID_ENCODER_FILE = "decoder.onnx", "encoder.onnx", "encoder_grid.onnx"
# An fp16 export sits beside the fp32 one and never replaces it: decoder_fp16.onnx.
FP16_SUFFIX = "_fp16"
FP16_DECODER_FILE = f"decoder{FP16_SUFFIX}.onnx"
# So does an int8 one (export/quantize.py): decoder_int8.onnx, used when named (--decoder).
INT8_SUFFIX = "_int8"
INT8_DECODER_FILE = f"decoder{INT8_SUFFIX}.onnx"
DECODER_FILES = {"fp32": DECODER_FILE, "fp16": FP16_DECODER_FILE, "int8": INT8_DECODER_FILE}


@dataclass
class Session:
    """An InferenceSession and where its tensors live (the provider actually in use).
    workers > 1: calls on separate slices run side by side, each on one thread (see
    `open_session`)."""

    sess: object
    provider: str
    device_type: str  # "cuda" or "cpu": where I/O binding puts inputs and outputs
    device_id: int
    workers: int = 1

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One call with I/O binding: on CUDA the inputs are copied over once and the output
        stays on the GPU until it is read back; on the CPU the same path costs nothing extra."""
        ort = require_onnxruntime()
        io = self.sess.io_binding()
        # Held until the call returns: on the CPU an OrtValue borrows the array's memory.
        values = {k: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x, dtype=np.float32),
                                                      self.device_type, self.device_id)
                  for k, x in feeds.items()}
        for name, value in values.items():
            io.bind_ortvalue_input(name, value)
        io.bind_output(self.sess.get_outputs()[0].name, self.device_type, self.device_id)
        self.sess.run_with_iobinding(io)
        return io.copy_outputs_to_cpu()[0]


def provider_chain(device: torch.device, tensorrt: bool = False, exact: bool = False) -> list:
    """CUDA (TensorRT first only if asked) when the device is CUDA, CPU always last.
    exact: no TF32 on CUDA, for checks against float32 torch."""
    if device.type != "cuda":
        return ["CPUExecutionProvider"]
    cuda = {"device_id": device.index or 0}
    if exact:
        cuda["use_tf32"] = 0
    chain = [("CUDAExecutionProvider", cuda), "CPUExecutionProvider"]
    if tensorrt:
        chain.insert(0, ("TensorrtExecutionProvider", {"device_id": device.index or 0}))
    return chain


def open_session(path: str | Path, device: torch.device | str = "cpu", tensorrt: bool = False,
                 exact: bool = False, quiet: bool = False, parallel: bool = False) -> Session:
    """A session on the best provider that really loads for `device`; says which in one line.

    parallel (for chunked decoding on the CPU): one thread per call and as many concurrent
    calls as torch has threads. onnxruntime's Sin kernel runs on one thread whatever
    intra_op_num_threads says, and in a SIREN it costs about as much as the matrix products,
    so one multi-threaded call at a time leaves cores idle for half of every layer."""
    ort = require_onnxruntime()
    if not Path(path).is_file():
        raise InputError(f"{path}: no such ONNX file")
    device = torch.device(device)
    chain = provider_chain(device, tensorrt, exact)
    missing = [_name(p) for p in chain if _name(p) not in ort.get_available_providers()]
    threads = torch.get_num_threads()  # as the torch path, so both use the same cores
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 1 if parallel else threads
    opts.log_severity_level = 3  # our one line below replaces its provider warnings
    try:
        sess = ort.InferenceSession(str(path), opts, providers=[p for p in chain if _name(p) not in missing])
    except Exception as e:  # onnxruntime's errors are plain Exception subclasses
        raise unloadable(path, e) from None
    used = sess.get_providers()[0]
    if device.type == "cuda" and used == "CPUExecutionProvider":
        why = (f"this onnxruntime has no CUDA provider ({INSTALL})" if "CUDAExecutionProvider" in missing
               else "the CUDA provider failed to load (CUDA or cuDNN libraries missing?)")
        warn(f"{why}: running on the CPU")
    elif tensorrt and used != "TensorrtExecutionProvider":
        warn("TensorRT was asked for but did not load: running on CUDA")
    on_gpu = used in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    if not quiet:
        print(f"onnxruntime {ort.__version__}: {Path(path).name} on {used}", file=sys.stderr, flush=True)
    workers = threads if parallel and not on_gpu else 1
    return Session(sess, used, "cuda" if on_gpu else "cpu", (device.index or 0) if on_gpu else 0, workers)


def _name(provider) -> str:
    return provider[0] if isinstance(provider, tuple) else provider


# Bytes of one [rows, hidden] activation per call on the CPU: about one core's L2, so the
# Gemm, Sin and bias passes of a layer reuse cached data. Measured with hidden 256 (2-core
# Xeon, 2 MiB L2 per core): 1024-2048 rows per call beat 4096-16384 by 5-20%.
CPU_CHUNK_BYTES = 2 * 2**20


def decode_points(s: Session, coords: np.ndarray, z: np.ndarray, hidden: int,
                  max_memory: int = DEFAULT_MAX_MEMORY, per_point: int = 0) -> np.ndarray:
    """coords [N, d] shared by latents z [B, D] -> values [B, N, C], a slice of points (and, for
    many latents, of latents) per call so memory stays bounded whatever N and B are: the plan of
    the torch path (`inr_gon.models.render.chunk_shape`), its budget shared by the concurrent
    calls. per_point: activation bytes of one (latent, point) pair (render.bytes_per_point;
    default four [hidden] float32 rows). On the CPU slices are small enough to stay in cache."""
    b, n = z.shape[0], coords.shape[0]
    group, step = chunk_shape(per_point or 16 * hidden, b, n, max_memory // s.workers)
    if s.device_type == "cpu":
        step = min(step, max(64, CPU_CHUNK_BYTES // (4 * hidden * group)))
    first = s.run({"coords": coords[None, :step], "latent": z[:group]})
    out = np.empty((b, n, first.shape[-1]), np.float32)
    out[:group, :step] = first

    def part(at: tuple[int, int]) -> None:
        j, i = at
        out[j:j + group, i:i + step] = s.run({"coords": coords[None, i:i + step], "latent": z[j:j + group]})

    rest = [(j, i) for j in range(0, b, group) for i in range(0, n, step) if i or j]
    with ThreadPoolExecutor(s.workers) as pool:
        list(pool.map(part, rest))
    return out


def decoder_file(run_dir: Path, path: str | Path | None = None, fp16: bool = False) -> Path:
    """The exported decoder to use: `path`, else RUN/decoder.onnx (fp32), or RUN/decoder_fp16.onnx
    when fp16 is asked for; an fp16 file is never picked silently."""
    if path is not None:
        return Path(path)
    path = run_dir / (FP16_DECODER_FILE if fp16 else DECODER_FILE)
    if not path.is_file():
        other = run_dir / (DECODER_FILE if fp16 else FP16_DECODER_FILE)
        hint = (f" ({other.name} is there: {'leave out' if fp16 else 'add'} --fp16)"
                if other.is_file() else "")
        raise InputError(f"{path}: no such file: run `inr-gon export {run_dir}"
                         f"{' --fp16' if fp16 else ''}` first{hint}")
    return path


def decoder_session(run, path, tensorrt: bool, quiet: bool, fp16: bool = False, local: bool = False):
    """(info, Session) of a run's exported decoder; local: a local run's (export/local.py).
    Either way, on the CPU, concurrent one-thread calls (`open_session`'s parallel)."""
    require_onnxruntime()  # first: without it, exporting would not help either
    if not local:
        require_gon(run.cfg)  # before "run export first": export refuses other models
    path = decoder_file(run.path, path, fp16)
    s = open_session(path, run.device, tensorrt, quiet=quiet, parallel=True)
    info = read_info(path, ("decoder",), s.sess)  # from the open session: one load of the file
    check_belongs(info, run.cfg, run.path)
    return info, s


def onnx_decoder(run, path: str | Path | None = None, tensorrt: bool = False, quiet: bool = False,
                 fp16: bool = False) -> Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]:
    """RUN/decoder.onnx (RUN/decoder_fp16.onnx with fp16, or `path`) as
    `inr_gon.models.render.decode_chunked`: (coords [N, d] shared by z [B, D], max_memory bytes)
    -> values [B, N, C] float32 on the CPU. For images and SDFs."""
    info, s = decoder_session(run, path, tensorrt, quiet, fp16)
    per_point = bytes_per_point(run.decoder)  # exported runs have a SIREN decoder

    def decode(coords: torch.Tensor, z: torch.Tensor, max_memory: int = DEFAULT_MAX_MEMORY) -> torch.Tensor:
        zn = z.detach().float().cpu().numpy()
        cn = coords.detach().float().cpu().numpy()
        return torch.from_numpy(decode_points(s, cn, zn, info.cfg.net.hidden, max_memory, per_point))

    return decode


def onnx_renderer(run, path: str | Path | None = None, tensorrt: bool = False, quiet: bool = False,
                  fp16: bool = False) -> Callable[[torch.Tensor, tuple[int, int], int], np.ndarray]:
    """RUN/decoder.onnx (RUN/decoder_fp16.onnx with fp16, or `path`) as a renderer:
    (z [B, D], (H, W), max_memory bytes) -> images float32 [B, H, W, C] in [0, 1], chunked like
    `inr_gon.models.render.render_images`."""
    run.require_images()
    decode = onnx_decoder(run, path, tensorrt, quiet, fp16)

    def render(z: torch.Tensor, hw: tuple[int, int], max_memory: int = DEFAULT_MAX_MEMORY) -> np.ndarray:
        h, w = hw
        values = decode(grid(h, w), z, max_memory)
        return values.clamp_(0, 1).reshape(z.shape[0], h, w, -1).numpy()

    return render


def onnx_encoder(run, path: str | Path | None = None, tensorrt: bool = False, quiet: bool = False
                 ) -> Callable[..., torch.Tensor]:
    """The exported encoder as a callable: (values [B, N, C] on the run's own training grid, or
    [B, H, W, C]; coords [N, d] for other points, general encoder only) -> latents [B, D].
    Prefers RUN/encoder_grid.onnx (one MatMul + Add), else RUN/encoder.onnx."""
    require_onnxruntime()
    require_gon(run.cfg)
    names = [GRID_ENCODER_FILE, ENCODER_FILE]
    found = [Path(path)] if path is not None else [run.path / n for n in names if (run.path / n).is_file()]
    if not found:
        raise InputError(f"{run.path}: no exported encoder: run `inr-gon export {run.path} "
                         "--with-encoder` first")
    s = open_session(found[0], run.device, tensorrt, quiet=quiet)
    info = read_info(found[0], ("encoder", "encoder_grid"), s.sess)
    check_belongs(info, run.cfg, run.path)
    cfg = info.cfg

    def encode(values: np.ndarray, coords: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        x = np.asarray(values, dtype=np.float32)
        x = x.reshape(x.shape[0], -1, x.shape[-1]) if x.ndim == 4 else x
        if coords is None and cfg.modality.shared_grid:
            coords = grid(*cfg.size)
        if x.ndim != 3 or x.shape[-1] != cfg.out_dim or coords is None or len(coords) != x.shape[1]:
            want = (f"[B, {cfg.dataset.height * cfg.dataset.width}, {cfg.out_dim}]"
                    if cfg.modality.shared_grid else "[B, N, 1] with coords [N, 3]")
            raise InputError(f"values are {list(x.shape)}, the encoder wants {want}")
        if info.kind == "encoder_grid":
            if not torch.equal(torch.as_tensor(coords).float().cpu(), grid(*cfg.size)):
                raise InputError(f"{info.path} encodes the training grid only: use {ENCODER_FILE}")
            feeds = lambda v: {"values": v}  # noqa: E731
        else:
            c = np.asarray(torch.as_tensor(coords).float().cpu())[None]
            feeds = lambda v: {"coords": c, "values": v}  # noqa: E731
        step = max(1, DEFAULT_MAX_MEMORY // (8 * 4 * cfg.net.hidden * cfg.net.layers * x.shape[1]))
        parts = [s.run(feeds(x[i:i + step])) for i in range(0, x.shape[0], step)]
        return torch.from_numpy(np.concatenate(parts))

    return encode
