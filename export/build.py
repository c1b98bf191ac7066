"""`export_run`: build each graph of a run, check it in onnxruntime against torch, then write it.

A graph is staged in a temporary folder beside its destination and only moved into place once
its checks pass, so a failed check leaves any earlier export untouched.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch

from inr_gon.errors import InputError, warn, wxh
from inr_gon.export.check import Check, ExportCheckError, Items, check_decoder, check_encoder, training_items
from inr_gon.export.encoder import encoder_proto, grid_encoder_proto
from inr_gon.export.info import read_info, require_exportable, require_onnxruntime, weights_digest
from inr_gon.export.local import check_local_decoder, local_decoder_proto, require_local_export
from inr_gon.export.onnx import DecoderGraph, add_metadata, decoder_proto, save_onnx
from inr_gon.export.quantize import int8_proto
from inr_gon.export.runtime import DECODER_FILES, FP16_SUFFIX, INT8_SUFFIX, open_session
from inr_gon.io import write_error
from inr_gon.models.render import grid
from inr_gon.run import load_config, load_run


@dataclass
class Exported:
    path: Path
    kind: str
    precision: str
    files: list[Path] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    provider: str = ""  # where onnxruntime ran the checks

    @property
    def bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def encoder_paths(out: Path) -> tuple[Path, Path]:
    """decoder.onnx -> encoder.onnx, encoder_grid.onnx; NAME.onnx -> NAME_encoder(_grid).onnx.
    Encoders are always float32, so an fp16 or int8 decoder's name (decoder_fp16.onnx) gives
    the same."""
    base = out.stem.removesuffix(FP16_SUFFIX).removesuffix(INT8_SUFFIX)
    stem = "encoder" if base == "decoder" else f"{base}_encoder"
    return out.with_name(f"{stem}.onnx"), out.with_name(f"{stem}_grid.onnx")


def keep_fp32(out: Path, precision: str) -> None:
    """An fp16 or int8 export never replaces an fp32 file (CONVENTIONS): refuse before any work."""
    try:
        held = read_info(out).precision if out.is_file() else None
    except InputError:
        held = None  # not ours: --out may replace it, as any output file
    if held == "fp32":
        raise InputError(f"{out} holds the fp32 decoder, which an --{precision} export never "
                         f"replaces: leave out --out (the {precision} file is "
                         f"{DECODER_FILES[precision]}) or name another file")


@dataclass
class Job:
    path: Path
    kind: str
    precision: str
    proto: onnx.ModelProto
    check: Callable  # (run_session, file name) -> list[Check]
    extra: dict[str, str] = field(default_factory=dict)


def load_exportable(run_dir: str | Path, device: str = "auto"):
    """The run, once its config says it is a GON or a local run (the models with an ONNX form)."""
    require_exportable(load_config(run_dir))
    return load_run(run_dir, device)


def export_run(run, out: Path | None = None, fp16: bool = False, with_encoder: bool = False,
               int8: bool = False) -> list[Exported]:
    """Write RUN/decoder.onnx (RUN/decoder_fp16.onnx with fp16, RUN/decoder_int8.onnx with
    int8; or `out`), and with_encoder the general and shared-grid encoders (float32:
    RUN/encoder.onnx, RUN/encoder_grid.onnx).
    Raises ExportCheckError when a graph disagrees with torch (that file is not written)."""
    cfg = run.cfg
    require_exportable(cfg)
    if fp16 and int8:
        raise InputError("--fp16 or --int8, not both")
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    if cfg.net.model == "local":
        require_local_export(precision, with_encoder)
    require_onnxruntime()
    out = Path(out) if out is not None else run.path / DECODER_FILES[precision]
    if out.suffix != ".onnx":
        raise InputError(f"--out must name a .onnx file, got '{out}'")
    if precision != "fp32":
        keep_fp32(out, precision)
    model = copy.deepcopy(run.model).float().cpu().eval()  # the reference: float32 on the CPU
    items = training_items(cfg)
    jobs = [decoder_job(model, cfg, items, out, precision)]
    if with_encoder:
        jobs += encoder_jobs(model, cfg, items, out)
    digest = weights_digest(run.path)
    done = []
    for job in jobs:
        add_metadata(job.proto, job.kind, cfg, job.precision,
                     {"inr_gon.weights_sha256": digest, **job.extra})
        onnx.checker.check_model(job.proto)
        done.append(stage_check_write(job, run.device))
    return done


def decoder_job(model, cfg, items: Items | None, out: Path, precision: str) -> Job:
    if cfg.net.model == "local":  # export/local.py: codes and the window's factors in
        return Job(out, "decoder", "fp32", local_decoder_proto(model.decoder),
                   lambda run_s, name: check_local_decoder(run_s, model, cfg, items, name))
    fp16 = precision == "fp16"
    half = DecoderGraph(model.decoder, fp16=True).eval() if fp16 else None
    proto = decoder_proto(model.decoder, fp16)
    if precision == "int8":
        proto = int8_proto(proto, cfg.net.hidden)
    return Job(out, "decoder", precision, proto,
               lambda run_s, name: check_decoder(run_s, model, cfg, half, items, name,
                                                 lossy=precision != "fp32"),
               example_latents(model, items))


@torch.no_grad()
def example_latents(model, items: Items | None) -> dict[str, str]:
    """The latents of the checked training items, so a torch-free script can render real ones."""
    if items is None:
        return {}
    z = model.encode(items.coords, items.values)
    return {"inr_gon.example_latents": json.dumps(z.tolist())}


def encoder_jobs(model, cfg, items: Items | None, out: Path) -> list[Job]:
    general, grid_path = encoder_paths(out)
    jobs = []
    affine = cfg.modality.shared_grid and cfg.net.inner_steps == 1  # on the run's pixel grid
    if model.origin.needs_hessian:
        why = ("which ONNX has no operator for" if model.origin.kind == "gauss-newton" else
               "here by conjugate-gradient iterations that float32 onnxruntime does not repeat "
               "within the check's tolerance")
        warn(f"{general.name} not written: a Gauss-Newton step solves a linear system, {why}"
             + (f"; {grid_path.name} holds it on the run's grid" if affine else ""))
    else:
        jobs.append(Job(general, "encoder", "fp32", encoder_proto(model),
                        lambda run_s, name: check_encoder(run_s, model, cfg, items, name)))
    if not affine:
        why = "an SDF run shares no grid" if not cfg.modality.shared_grid else \
            f"with {cfg.net.inner_steps} inner steps the latent is not affine in the values"
        warn(f"{grid_path.name} not written: {why}"
             + (f"; {general.name} covers every case" if jobs else ""))
        return jobs
    coords = grid(*cfg.size)
    jobs.append(Job(grid_path, "encoder_grid", "fp32", grid_encoder_proto(model, coords),
                    lambda run_s, name: check_encoder(run_s, model, cfg, items, name, grid=coords),
                    {"inr_gon.grid": wxh(*cfg.size)}))
    return jobs


def stage_check_write(job: Job, device: torch.device) -> Exported:
    try:  # an --out under a file, in a read-only folder, ...: one error line, not a traceback
        job.path.parent.mkdir(parents=True, exist_ok=True)
        staging = tempfile.TemporaryDirectory(dir=job.path.parent, prefix=".export-")
    except OSError as e:
        raise write_error(job.path, e) from None
    with staging as tmp:
        staged = save_onnx(job.proto, Path(tmp) / job.path.name)
        s = open_session(staged[0], device, exact=True, quiet=True)
        checks, provider = job.check(s.run, job.path.name), s.provider
        del s  # let go of the file before it moves
        failed = [c for c in checks if not c.ok]
        if failed:
            f = failed[0]
            raise ExportCheckError(f"{job.path.name} disagrees with torch on {f.inputs}: "
                                   f"{f.measure} {f.value:.3g} > {f.bound:g}; not written")
        files = [job.path.with_name(f.name) for f in reversed(staged)]  # weights before graph
        try:
            for src, dst in zip(reversed(staged), files):
                os.replace(src, dst)
        except OSError as e:
            raise write_error(files[0], e) from None
    return Exported(job.path, job.kind, job.precision, files[::-1], checks, provider)
