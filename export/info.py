"""What an exported file says about itself, read without the `onnx` package.

Running an exported file needs onnxruntime only: the `onnx` package (and the ml_dtypes it
imports, half a second on a 2-core machine) is for building graphs (export/onnx.py). The
metadata is therefore read through onnxruntime's own model metadata, so `render --backend onnx`
and `explore` start without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from inr_gon.config import Config
from inr_gon.errors import InputError, warn
from inr_gon.run import MODEL_FILE

INSTALL = "pip install 'inr-gon[cpu]' (or 'inr-gon[gpu]' for CUDA; never both)"


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise InputError(f"onnxruntime is not installed: {INSTALL}") from None
    return onnxruntime


def require_quantization():
    """onnxruntime's quantisation tools (they come with onnxruntime, an extra)."""
    require_onnxruntime()
    import onnxruntime.quantization
    return onnxruntime.quantization


FORMAT = "inr-gon/1"
KINDS = ("decoder", "encoder", "encoder_grid")
# The config fields that decide the graph: a file whose fields differ belongs to another run.
ARCH_FIELDS = ("model", "modality", "channels", "latent_dim", "hidden", "layers", "w0", "w0_hidden",
               "inner_steps", "variational", "modulation", "latent_grid", "origin_step", "local_base",
               "local_pixels", "local_window")


def require_gon(cfg) -> None:
    """InputError unless a GON run (the decoder of latent vectors these paths render)."""
    if cfg.net.model == "local":
        raise InputError("a local run's ONNX decoder super-resolves photos only: "
                         "`inr-gon render RUN photo.png --scale S --backend onnx`")
    require_exportable(cfg)


def require_exportable(cfg) -> None:
    if cfg.net.model not in ("gon", "local"):
        raise InputError(f"only GON and local runs can be exported to ONNX (this run's model is "
                         f"'{cfg.net.model}')")


@dataclass
class OnnxInfo:
    path: Path
    kind: str
    cfg: Config
    meta: dict[str, str]

    @property
    def precision(self) -> str:
        return self.meta.get("inr_gon.precision", "fp32")


def read_info(path: str | Path, kinds: tuple[str, ...] = KINDS, session=None) -> OnnxInfo:
    """The inr-gon metadata of an ONNX file; InputError for anything that is not ours.
    session: an onnxruntime InferenceSession already open on it (the file is then not loaded
    a second time just for its metadata)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such ONNX file")
    meta = dict((session or _metadata_session(path)).get_modelmeta().custom_metadata_map)
    kind = meta.get("inr_gon.kind")
    if meta.get("inr_gon.format") != FORMAT or kind not in KINDS:
        raise InputError(f"{path}: not an inr-gon ONNX file (no inr-gon metadata)")
    if kind not in kinds:
        raise InputError(f"{path}: an inr-gon {kind}, wanted {' or '.join(kinds)}")
    try:
        cfg = Config.from_json(meta.get("inr_gon.config", ""))
    except InputError as e:
        raise InputError(f"{path}: damaged inr-gon metadata ({e})") from None
    return OnnxInfo(path, kind, cfg, meta)


def _metadata_session(path: Path):
    """A session that only reads the file (no graph optimisation): its metadata."""
    ort = require_onnxruntime()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's errors are plain Exception subclasses
        raise unloadable(path, e) from None


def unloadable(path: str | Path, e: Exception) -> InputError:
    """The one line for a file onnxruntime refuses (metadata or runtime session alike)."""
    return InputError(f"{path}: not an ONNX file onnxruntime loads ({str(e).splitlines()[0][:200]})")


def weights_digest(run_dir: Path) -> str:
    """sha256 of the run's model.safetensors: tells a stale export from a current one."""
    return hashlib.sha256((run_dir / MODEL_FILE).read_bytes()).hexdigest()


def check_belongs(info: OnnxInfo, cfg: Config, run_dir: Path) -> None:
    """InputError if the file was exported from another architecture; a warning if from other
    weights of this one (the run trained on after the export)."""
    theirs, ours = info.cfg.flat(), cfg.flat()
    for name in ARCH_FIELDS:
        if theirs[name] != ours[name]:
            raise InputError(f"{info.path}: exported from another run ({name} is "
                             f"{theirs[name]!r} there, {ours[name]!r} here)")
    if info.meta.get("inr_gon.weights_sha256") not in (None, weights_digest(run_dir)):
        warn(f"{info.path} was exported from older weights than {run_dir}: "
             f"run `inr-gon export {run_dir}` again")
