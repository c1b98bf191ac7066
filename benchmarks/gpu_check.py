"""GPU proof: one command that runs and measures every CUDA path (issue 16). See docs/gpu.md.

    python benchmarks/gpu_check.py [--data-dir DIR] [--out DIR]    # on a CUDA machine, < 15 min
    python benchmarks/gpu_check.py --dry-run [--out DIR]             # the same code, CPU, tiny

1. Training on real data (CIFAR-10 images and the mesh folder), CPU fp32 first as the
   reference, then on the device: eager fp32, --compile, --precision tf32 and bf16, and under
   `torchrun --nproc-per-node 1` (NCCL; the worker also all-reduces and checks a DDP gradient).
   Each loss curve is checked against the CPU's (LOSS_TOL); fp32 gradients of one step against
   the CPU's and against the paper's step (GRAD_TOL).
2. The training step timed against the paper's step on the same device (ratio) and as a
   fraction of the matmul peak of its precision, measured in the same run (gpu_speed.py).
3. Rendering size x size through torch eager, torch.compile, onnxruntime CUDA (I/O binding)
   and TensorRT if present, fp32 and fp16: coordinates/s, fraction of peak, peak memory, max
   |difference| to torch eager fp32 (RENDER_TOL).
Writes gpu_<device>.json and gpu_<device>.md under --out; exit 1 if a check fails. Without
CUDA (and no --dry-run) it says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_report import markdown, targets  # noqa: E402
from gpu_speed import matmul_peaks, peak_memory, set_tf32, time_renders, time_steps  # noqa: E402
from train_step import check_same  # noqa: E402

from inr_gon import load_run  # noqa: E402
from inr_gon.config import Config  # noqa: E402
from inr_gon.errors import InputError  # noqa: E402
from inr_gon.gon import GON  # noqa: E402
from inr_gon.step import Stepper  # noqa: E402
from inr_gon.tasks import make_task  # noqa: E402
from inr_gon.train import read_metrics, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
IMAGES, MESHES = "cifar10_train10k_images.npy", "meshes"


@dataclass(frozen=True)
class Sizes:
    images: int | None  # items of the image set (None: all)
    size: int  # training images are size x size
    hidden: int
    layers: int
    latent: int
    batch: int
    steps: int
    log_every: int
    meshes: int | None
    sdf_points: int
    sdf_samples: int
    sdf_batch: int
    step_batch: int  # the timed training step's batch (the paper's 64)
    step_repeats: int
    matmul: int  # n of the n x n x n peak matmul
    render: int  # renders are render x render
    render_repeats: int


# the paper's SIREN 4 x 256, latent 32, on CIFAR-10 32 x 32; renders 4096 x 4096
FULL = Sizes(None, 32, 256, 4, 32, 32, 60, 5, None, 4096, 20_000, 4, 64, 20, 8192, 4096, 3)
DRY = Sizes(16, 8, 32, 2, 8, 4, 4, 2, 2, 256, 512, 2, 4, 2, 128, 64, 1)

# Loss curves: max over logged steps of |loss - CPU fp32 loss| / CPU fp32 loss. fp32 variants
# differ from the CPU by summation order only (Adam amplifies it a little over the steps);
# TF32 rounds matmul inputs to 10 bits, bf16 autocast to 8. Provisional until the first GPU run.
LOSS_TOL = {"eager fp32": 0.02, "compile fp32": 0.02, "torchrun fp32": 0.02, "tf32": 0.05, "bf16": 0.15}
# One step's weight gradients, ||g - g_cpu|| / ||g_cpu|| (the issue: fp32 identical to 1e-4).
GRAD_TOL = {"fp32": 1e-4, "compile fp32": 1e-4, "tf32": 1e-2, "bf16": 1e-1, "paper's step fp32": 1e-4}
# Renders: max |value - torch eager fp32| over the image, values in [0, 1].
RENDER_TOL = {"fp32": 1e-3, "fp16": 3e-2}
TRAIN_VARIANTS = {"eager fp32": {}, "compile fp32": {"compile": True}, "tf32": {"precision": "tf32"},
                  "bf16": {"precision": "bf16"}, "torchrun fp32": {}}


def find_data(data_dir: str | None) -> Path | None:
    """--data-dir, else the project's shared/data beside the repository (or inside it)."""
    candidates = [Path(data_dir)] if data_dir else [REPO.parent / "shared" / "data", REPO / "shared" / "data"]
    return next((d for d in candidates if (d / IMAGES).is_file() and (d / MESHES).is_dir()), None)


def data_sources(data: Path | None, sizes: Sizes, tmp: Path) -> dict[str, str]:
    """modality -> DATA spec. Subsets (sizes.images, sizes.meshes) are copied into tmp; a dry
    run without the real data trains on built-ins (and says so in the results)."""
    if data is None:
        return {"image": f"builtin:shapes:{sizes.images}", "sdf": f"builtin:shapes3d:{sizes.meshes}"}
    images, meshes = data / IMAGES, data / MESHES
    if sizes.images is not None:
        images = tmp / "images.npy"
        np.save(images, np.load(data / IMAGES, mmap_mode="r")[:sizes.images])
    if sizes.meshes is not None:  # the smallest files: quickest to sample
        meshes = tmp / "meshes"
        meshes.mkdir()
        for f in sorted((data / MESHES).glob("*.obj"), key=lambda f: f.stat().st_size)[:sizes.meshes]:
            shutil.copy(f, meshes / f.name)
    return {"image": str(images), "sdf": str(meshes)}


def train_config(sizes: Sizes, modality: str, data: str) -> Config:
    common = dict(data=data, hidden=sizes.hidden, layers=sizes.layers, latent_dim=sizes.latent,
                  steps=sizes.steps, log_every=sizes.log_every, preview_every=0, checkpoint_every=0,
                  val_fraction=0.1, seed=0, device="cpu")
    if modality == "image":
        return Config(height=sizes.size, width=sizes.size, batch_size=sizes.batch, **common)
    return Config(modality="sdf", batch_size=sizes.sdf_batch, sdf_points=sizes.sdf_points,
                  sdf_samples=sizes.sdf_samples, **{**common, "val_fraction": 0.25})


# ---- training ---------------------------------------------------------------------------------------

def losses(run_dir: Path) -> list[list[float]]:
    return [[r["step"], r["loss"]] for r in read_metrics(run_dir) if "loss" in r]


def train_here(cfg: Config, out: Path, device: torch.device) -> dict:
    """`inr_gon.train.train` in this process; seconds, peak memory, the loss curve."""
    t = time.perf_counter()
    result = {}
    mem = peak_memory(lambda: result.update(r=train(cfg, out, quiet=True)), device)
    set_tf32(False)  # perf.configure set the process-wide switch for this run
    r = result["r"]
    return {"seconds": time.perf_counter() - t, "peak_memory_bytes": mem, "losses": losses(out),
            "train_metric": r.train_psnr, "val_metric": r.val_psnr, "metric": r.metric}


def train_torchrun(cfg: Config, out: Path, tmp: Path, launch: bool) -> dict:
    """The worker under `torchrun --nproc-per-node 1` (launch), or, in the dry run, in this
    process as the same single rank of a gloo group (the launcher alone costs ~20 s of imports
    on a loaded 2-core machine)."""
    spec = {"cfg": cfg.to_dict(), "out": str(out), "result": str(tmp / f"{out.name}.worker.json")}
    t = time.perf_counter()
    if launch:
        (tmp / f"{out.name}.spec.json").write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
               __file__, "--worker", str(tmp / f"{out.name}.spec.json")]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONSAFEPATH": "1"})
        if res.returncode:
            return {"error": f"torchrun exit {res.returncode}: {res.stderr[-1500:]}"}
    else:
        worker(spec, init_method=f"file://{tmp / (out.name + '.rendezvous')}")
    result = json.loads(Path(spec["result"]).read_text())
    return {**result, "launcher": "torchrun" if launch else "in-process", "seconds": time.perf_counter() - t,
            "losses": losses(out)}


def worker(spec: dict, init_method: str | None = None) -> int:
    """One rank: join the group (torchrun's env://, or init_method as rank 0 of 1), all-reduce,
    one DDP step's gradient against the plain model's, then the training run (at world size 1
    train() runs as one process: distributed.launched() is False)."""


    cfg = Config.from_dict(spec["cfg"])
    device = torch.device(cfg.device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    rank = {} if init_method is None else {"init_method": init_method, "rank": 0, "world_size": 1}
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None, **rank)
    try:
        x = torch.full((8,), dist.get_rank() + 1.0, device=device)
        dist.all_reduce(x)
        size = dist.get_world_size()
        task = make_task(cfg, device, quiet=True)
        coords, values = task.batch(0)
        torch.manual_seed(cfg.seed)
        plain = GON(task.cfg).to(device)
        ddp_model = GON(task.cfg).to(device)
        ddp_model.load_state_dict(plain.state_dict())
        ids = [device.index] if device.type == "cuda" else None
        ddp = torch.nn.parallel.DistributedDataParallel(ddp_model, device_ids=ids)
        for m in (plain, ddp):
            m(coords, values)["loss"].backward()
        g = [torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (plain, ddp_model)]
        mem = peak_memory(lambda: train(cfg, Path(spec["out"]), quiet=True), device)
    finally:
        dist.destroy_process_group()
    Path(spec["result"]).write_text(json.dumps({
        "backend": backend, "world_size": size,
        "all_reduce_ok": bool(torch.all(x == size * (size + 1) / 2)),
        "ddp_grad_rel": relative(g[1], g[0]), "grad_norm": float(g[0].norm()),
        "peak_memory_bytes": mem}))
    return 0


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||; 0 when both are 0."""
    diff, ref = float((a.double() - b.double()).norm()), float(b.double().norm())
    return diff / ref if ref > 0 else (0.0 if diff == 0 else float("inf"))


def train_all(cfg: Config, device: torch.device, tmp: Path, dry_run: bool) -> tuple[dict, list]:
    """The CPU fp32 reference, then each variant on the device; rows and loss-curve checks."""
    name = cfg.modality
    rows = {"cpu fp32": train_here(cfg, tmp / f"{name}_cpu", torch.device("cpu"))}
    checks = []
    ref = dict(rows["cpu fp32"]["losses"])
    for variant, change in TRAIN_VARIANTS.items():
        if change.get("compile") and dry_run:
            rows[variant] = {"skipped": "torch.compile is not run in the dry run (minutes on a CPU)"}
            continue
        vcfg, out = cfg.replace(device=device.type, **change), tmp / f"{name}_{variant.replace(' ', '_')}"
        try:
            if variant.startswith("torchrun"):
                rows[variant] = train_torchrun(vcfg, out, tmp, launch=not dry_run)
            else:
                rows[variant] = train_here(vcfg, out, device)
        except Exception as e:  # a path that fails is a failed check, the others still run
            rows[variant] = {"error": f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"}
        got = dict(rows[variant].get("losses", []))
        rel = max((abs(got[s] - ref[s]) / abs(ref[s]) for s in ref if s in got), default=float("inf"))
        rel = rel if got.keys() == ref.keys() else float("inf")
        checks.append(check(f"{name} training {variant}: loss curve vs CPU fp32", rel, LOSS_TOL[variant],
                            rows[variant].get("error", "")))
        if variant.startswith("torchrun") and "error" not in rows[variant]:
            w = rows[variant]
            checks.append(check(f"{name} torchrun {w['backend']}: all-reduce of one rank",
                                0.0 if w["all_reduce_ok"] else 1.0, 0.0))
            checks.append(check(f"{name} torchrun {w['backend']}: DDP gradient vs plain",
                                w["ddp_grad_rel"], 1e-6, f"gradient norm {w['grad_norm']:.3g}"))
    return rows, checks


def check(name: str, measured: float, tolerance: float, detail: str = "") -> dict:
    return {"name": name, "measured": measured, "tolerance": tolerance,
            "passed": bool(measured <= tolerance), "detail": detail}


# ---- gradients of one step -----------------------------------------------------------------------

def stepper_grads(cfg: Config, coords, values, device: torch.device) -> torch.Tensor:
    """Weight gradients of one inr-gon training step (the Stepper, at lr 0) from the same
    initial weights on any device."""
    torch.manual_seed(cfg.seed)
    model = GON(cfg).to(device)
    set_tf32(cfg.precision == "tf32")
    step = Stepper(model, torch.optim.Adam(model.parameters()), cfg, device)
    step(coords.to(device), values.to(device), None, 0.0)
    set_tf32(False)
    return torch.cat([p.grad.flatten().double().cpu() for p in model.parameters()])


def gradient_checks(cfg: Config, device: torch.device, compile_ok: bool) -> list[dict]:
    task = make_task(cfg, torch.device("cpu"), quiet=True)
    coords, values = task.batch(0)
    cpu = stepper_grads(task.cfg, coords, values, torch.device("cpu"))
    out = []
    for name, change in [("fp32", {}), ("compile fp32", {"compile": True}),
                         ("tf32", {"precision": "tf32"}), ("bf16", {"precision": "bf16"})]:
        if change.get("compile") and not compile_ok:
            continue
        g = stepper_grads(task.cfg.replace(device=device.type, **change), coords, values, device)
        out.append(check(f"gradients {name} on {device.type} vs CPU fp32", relative(g, cpu), GRAD_TOL[name]))
    same = check_same(task.cfg, values.to(device), coords.to(device), torch.float32)
    out.append(check(f"gradients vs the paper's step, fp32 on {device.type}", same["grad_rel"],
                     GRAD_TOL["paper's step fp32"]))
    return out


# ---- the whole check -------------------------------------------------------------------------------

def device_name(dry_run: bool) -> str:
    if dry_run:
        return "cpu-dry-run"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name().lower()).strip("-")


def run_check(args, device: torch.device, sizes: Sizes, tmp: Path) -> dict:
    os.environ.setdefault("INR_GON_CACHE", str(tmp / "sdf-cache"))
    data = find_data(args.data_dir)
    if data is None and not args.dry_run:
        raise InputError(f"no {IMAGES} and {MESHES}/ in {args.data_dir or REPO.parent / 'shared/data'}: "
                         "pass --data-dir")
    compile_ok = not args.dry_run
    t0, timings = time.perf_counter(), {}
    peaks = matmul_peaks(device, sizes.matmul)
    timings["matmul"] = time.perf_counter() - t0
    sources = data_sources(data, sizes, tmp)
    training, checks = {}, []
    for modality, spec in sources.items():
        rows, c = train_all(train_config(sizes, modality, spec), device, tmp, args.dry_run)
        training[modality], checks = rows, checks + c
        timings[f"training {modality}"] = time.perf_counter() - t0 - sum(timings.values())
    image_cfg = train_config(sizes, "image", sources["image"])
    checks += gradient_checks(image_cfg, device, compile_ok)
    task = make_task(image_cfg.replace(batch_size=sizes.step_batch), torch.device("cpu"), quiet=True)
    coords, x = (t.to(device) for t in task.batch(0))
    steps = time_steps(task.cfg, coords, x, device, sizes.step_repeats, peaks, compile_ok)
    timings["gradients and step"] = time.perf_counter() - t0 - sum(timings.values())
    run = load_run(tmp / "image_cpu")  # the CPU fp32 run: a trained decoder
    z = run.encode(task.data.images[:1])
    tensorrt = _has_tensorrt() and device.type == "cuda"
    renders = time_renders(run.decoder, z, sizes.render, device, sizes.render_repeats, peaks,
                           compile_ok, tensorrt)
    for r in renders:
        checks.append(check(f"render {r['backend']} {r['precision']} vs torch eager fp32 (max |diff|)",
                            r.get("max_abs_diff", float("inf")), RENDER_TOL[r["precision"]],
                            r.get("error", "")))
    timings["render"] = time.perf_counter() - t0 - sum(timings.values())
    return {"data": {**sources, "real": data is not None}, "sizes": asdict(sizes),
            "tolerances": {"loss_curve_rel": LOSS_TOL, "gradient_rel": GRAD_TOL,
                           "render_max_abs": RENDER_TOL},
            "matmul_peak_flops": peaks, "training": training, "train_step": steps, "render": renders,
            "render_size": [sizes.render, sizes.render], "tensorrt": tensorrt, "checks": checks,
            "seconds": timings}


def _has_tensorrt() -> bool:
    try:
        import onnxruntime  # optional: the [cpu] or [gpu] extra
    except ImportError:
        return False
    return "TensorrtExecutionProvider" in onnxruntime.get_available_providers()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="folder holding cifar10_train10k_images.npy and meshes/ "
                    "(default: ../shared/data beside the repository)")
    ap.add_argument("--out", default=str(RESULTS), help="folder for gpu_<device>.json and .md")
    ap.add_argument("--dry-run", action="store_true", help="the same code on the CPU, tiny sizes")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(json.loads(Path(args.worker).read_text()))
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here, nothing to check (--dry-run runs the same code on the CPU)")
        return 0
    device = torch.device("cpu" if args.dry_run else "cuda")
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = run_check(args, device, DRY if args.dry_run else FULL, Path(tmp))
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    name = device_name(args.dry_run)
    result = {"benchmark": "gpu_check", "device": name, "dry_run": args.dry_run,
              "gpu": None if args.dry_run else torch.cuda.get_device_name(),
              "date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
              "python": platform.python_version(), "total_seconds": time.perf_counter() - t, **result}
    result["targets"] = targets(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"gpu_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    (out / f"gpu_{name}.md").write_text(md)
    print(md)
    print(f"wrote {out / f'gpu_{name}.json'} and .md")
    return 0 if all(c["passed"] for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
