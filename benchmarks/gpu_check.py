"""GPU proof: one command that runs and measures every CUDA path (issue 16). See docs/gpu.md.

    python benchmarks/gpu_check.py [--data-dir DIR] [--out DIR]    # on a CUDA machine, < 15 min
    python benchmarks/gpu_check.py --dry-run [--out DIR]             # the same code, CPU, tiny

1. Training on real data (CIFAR-10 images and the mesh folder), CPU fp32 first as the
   reference, then on the device: eager fp32, --compile, --precision tf32 and bf16, and under
   `torchrun --nproc-per-node 1` (NCCL; the worker also all-reduces and checks a DDP gradient).
   Each loss curve is checked against the CPU's (gpu_train.LOSS_TOL); one step's gradients against
   the CPU's and against the paper's step (GRAD_TOL).
2. The training step timed against the paper's step on the same device (ratio) and as a
   fraction of the matmul peak of its precision, measured in the same run (gpu_speed.py).
3. Rendering size x size through torch eager, torch.compile, onnxruntime CUDA (I/O binding)
   and TensorRT if present, fp32 and fp16: coordinates/s, fraction of peak, peak memory, max
   |difference| to torch eager fp32 (RENDER_TOL).
4. Time-budget training of the image folder defaults (--time-budget, default 5m) on CIFAR-10:
   steps done and the held-out PSNR at the end.
Writes gpu_<device>.json and gpu_<device>.md under --out (the JSON after every section, so a run
cut short keeps what it measured); exit 1 if a check fails. Without CUDA (and no --dry-run) it
says so in one line and exits 0. --sections runs a subset (--work keeps the CPU reference run
between invocations) and --merge joins the JSON of several invocations into one report, for
machines lent for a few minutes at a time.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from inr_gon import load_run
from inr_gon.config import FIELD_GROUP, UNLIMITED_STEPS, Config, duration_seconds
from inr_gon.device import configure
from inr_gon.errors import InputError
from inr_gon.export.build import export_run
from inr_gon.io import atomic_write
from inr_gon.models.gon import GON
from inr_gon.presets import FOLDER_DEFAULTS, folder_values
from inr_gon.training.step import Stepper
from inr_gon.training.tasks import make_task

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402
from gpu_report import check, markdown, merge, targets  # noqa: E402
from gpu_speed import matmul_peaks, set_tf32, time_renders, time_steps  # noqa: E402
from gpu_train import LOSS_TOL, budget_training, relative, train_all, train_here  # noqa: E402
from train_step import check_same  # noqa: E402

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
    render_memory: int  # bytes: the larger chunks a GPU render may use (--max-memory)
    budget: str  # --time-budget of the folder-defaults training


# the paper's SIREN 4 x 256, latent 32, on CIFAR-10 32 x 32; renders 4096 x 4096
FULL = Sizes(images=None, size=32, hidden=256, layers=4, latent=32, batch=32, steps=60, log_every=5,
             meshes=None, sdf_points=4096, sdf_samples=20_000, sdf_batch=4, step_batch=64,
             step_repeats=20, matmul=8192, render=4096, render_repeats=3, render_memory=8 * 2**30,
             budget="5m")
# well under a minute on 2 CPU cores
DRY = Sizes(images=16, size=8, hidden=32, layers=2, latent=8, batch=4, steps=4, log_every=2,
            meshes=2, sdf_points=256, sdf_samples=512, sdf_batch=2, step_batch=4, step_repeats=2,
            matmul=128, render=64, render_repeats=1, render_memory=2**20, budget="3s")

# One step's weight gradients, ||g - g_cpu|| / ||g_cpu|| (the issue: fp32 identical to 1e-4).
GRAD_TOL = {"fp32": 1e-4, "compile fp32": 1e-4, "tf32": 1e-2, "bf16": 1e-1, "paper's step fp32": 1e-4}
# Renders: max |value - torch eager fp32| over the image, values in [0, 1]. TensorRT builds
# fp32 engines with TF32 allowed (TensorRT's default, which open_session leaves): TF32's bound.
RENDER_TOL = {"fp32": 1e-3, "fp16": 3e-2, "TensorRT fp32": 1e-2}


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
        meshes.mkdir(exist_ok=True)
        for f in sorted((data / MESHES).glob("*.obj"), key=lambda f: f.stat().st_size)[:sizes.meshes]:
            shutil.copy(f, meshes / f.name)
    return {"image": str(images), "sdf": str(meshes)}


def train_config(sizes: Sizes, modality: str, data: str) -> Config:
    common = dict(data=data, hidden=sizes.hidden, layers=sizes.layers, latent_dim=sizes.latent,
                  steps=sizes.steps, log_every=sizes.log_every, preview_every=0, checkpoint_every=0,
                  val_fraction=0.1, seed=0, device="cpu")
    if modality == "image":
        return Config.of(height=sizes.size, width=sizes.size, batch_size=sizes.batch, **common)
    return Config.of(modality="sdf", batch_size=sizes.sdf_batch, sdf_points=sizes.sdf_points,
                     sdf_samples=sizes.sdf_samples, **{**common, "val_fraction": 0.25})


# ---- gradients of one step -----------------------------------------------------------------------

def stepper_grads(cfg: Config, coords, values, device: torch.device) -> tuple[torch.Tensor, bool]:
    """Weight gradients of one inr-gon training step (the Stepper, at lr 0) from the same
    initial weights on any device, and whether the step ran compiled."""
    torch.manual_seed(cfg.train.seed)
    model = GON(cfg).to(device)
    configure(cfg, device)  # as train() does: TF32 on CUDA for precision tf32
    step = Stepper(model, torch.optim.Adam(model.parameters()), cfg, device)
    step(coords.to(device), values.to(device), None, 0.0)
    set_tf32(False)
    return torch.cat([p.grad.flatten().double().cpu() for p in model.parameters()]), step.forward is not model


def gradient_checks(cfg: Config, device: torch.device, compile_ok: bool) -> list[dict]:
    task = make_task(cfg, torch.device("cpu"), quiet=True)
    coords, values = task.batch(0)
    cpu, _ = stepper_grads(task.cfg, coords, values, torch.device("cpu"))
    out = []
    # the folder defaults' model and step (every layer, a latent grid, Gauss-Newton: a linear
    # solve), in fp32 on every pixel: the precision and the points are checked on their own
    model = {k: v for k, v in FOLDER_DEFAULTS["image"].items() if FIELD_GROUP[k] == "net"}
    gn_cfg = task.cfg.replace(**model)
    gn_cpu, _ = stepper_grads(gn_cfg, coords, values, torch.device("cpu"))
    gn, _ = stepper_grads(gn_cfg.replace(device=device.type), coords, values, device)
    out.append(check(f"gradients fp32 of the folder defaults (Gauss-Newton) on {device.type} vs CPU",
                     relative(gn, gn_cpu), GRAD_TOL["fp32"]))
    for name, change in [("fp32", {}), ("compile fp32", {"compile": True}),
                         ("tf32", {"precision": "tf32"}), ("bf16", {"precision": "bf16"})]:
        if change.get("compile") and not compile_ok:
            continue
        vcfg = task.cfg.replace(device=device.type, **change)
        g, was_compiled = stepper_grads(vcfg, coords, values, device)
        if change.get("compile"):
            out.append(check("gradient step compiled (no fallback to eager)", float(not was_compiled), 0.0))
        out.append(check(f"gradients {name} on {device.type} vs CPU fp32", relative(g, cpu), GRAD_TOL[name]))
    same = check_same(task.cfg, values.to(device), coords.to(device), torch.float32)
    out.append(check(f"gradients vs the paper's step, fp32 on {device.type}", same["grad_rel"],
                     GRAD_TOL["paper's step fp32"]))
    return out


def fp16_export_check(run_dir: Path, device: torch.device) -> dict:
    """`inr-gon export --fp16` with the run on the device: its graph checks against torch run
    on the device's onnxruntime provider (CUDA on a GPU)."""
    want = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    try:
        (done,) = export_run(load_run(run_dir, device.type), run_dir / "decoder_fp16.onnx", fp16=True)
    except Exception as e:  # ExportCheckError (a check failed) or a provider that did not load
        return check("export --fp16 checked on the device", 1.0, 0.0, f"{type(e).__name__}: {e}"[:300])
    # export_run raises when a check fails: here they all passed, on `done.provider`
    detail = f"provider {done.provider}, {len(done.checks)} checks passed"
    return check("export --fp16 checked on the device", float(done.provider != want), 0.0, detail)


# ---- the whole check, a section at a time -------------------------------------------------------

SECTIONS = ("train", "grads", "step", "export", "render", "budget")


def device_name(dry_run: bool) -> str:
    if dry_run:
        return "cpu-dry-run"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name().lower()).strip("-")


class Check:
    """The state the sections share: sizes, data, the work folder and the growing result."""

    def __init__(self, args, device: torch.device, sizes: Sizes, work: Path) -> None:
        self.args, self.device, self.sizes, self.work = args, device, sizes, work
        self.compile_ok = not args.dry_run
        data = find_data(args.data_dir)
        if data is None and not args.dry_run:
            raise InputError(f"no {IMAGES} and {MESHES}/ in {args.data_dir or REPO.parent / 'shared/data'}: "
                             "pass --data-dir")
        os.environ.setdefault("INR_GON_CACHE", str(work / "sdf-cache"))
        self.sources = data_sources(data, sizes, work)
        self.image_cfg = train_config(sizes, "image", self.sources["image"])
        self.result: dict = {"data": {**self.sources, "real": data is not None}, "sizes": asdict(sizes),
                             "tolerances": {"loss_curve_rel": LOSS_TOL, "gradient_rel": GRAD_TOL,
                                            "render_max_abs": RENDER_TOL},
                             "checks": [], "seconds": {}, "sections": []}
        self.peaks = matmul_peaks(device, sizes.matmul)
        self.result["matmul_peak_flops"] = self.peaks

    def cpu_run(self) -> Path:
        """The CPU fp32 image run (trained by section train, or here if that ran elsewhere)."""
        run = self.work / "image_cpu"
        if not (run / "config.json").exists():
            shutil.rmtree(run, ignore_errors=True)
            train_here(self.image_cfg, run, torch.device("cpu"))
        return run

    def train(self) -> None:
        self.result["training"] = {}
        for modality, spec in self.sources.items():
            for stale in self.work.glob(f"{modality}_*"):  # an earlier invocation's runs
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
            rows, checks = train_all(train_config(self.sizes, modality, spec), self.device, self.work,
                                     self.args.dry_run)
            self.result["training"][modality] = rows
            self.result["checks"] += checks

    def grads(self) -> None:
        self.result["checks"] += gradient_checks(self.image_cfg, self.device, self.compile_ok)

    def step(self) -> None:
        task = make_task(self.image_cfg.replace(batch_size=self.sizes.step_batch), torch.device("cpu"),
                         quiet=True)
        coords, x = (t.to(self.device) for t in task.batch(0))
        self.result["train_step"] = time_steps(task.cfg, coords, x, self.device, self.sizes.step_repeats,
                                               self.peaks, self.compile_ok)

    def export(self) -> None:
        self.result["checks"].append(fp16_export_check(self.cpu_run(), self.device))

    def render(self) -> None:
        run = load_run(self.cpu_run())  # the CPU fp32 run: a trained decoder
        task = make_task(self.image_cfg, torch.device("cpu"), quiet=True)
        z = run.encode(task.data.images[:1])
        tensorrt = _has_tensorrt() and self.device.type == "cuda"
        s = self.sizes
        renders = time_renders(run.decoder, z, s.render, self.device, s.render_repeats, self.peaks,
                               self.compile_ok, tensorrt, s.render_memory)
        for r in renders:
            trt = "TensorRT" in r["backend"] and r["precision"] == "fp32"
            self.result["checks"].append(check(
                f"render {r['backend']} {r['precision']} vs torch eager fp32 (max |diff|)",
                r.get("max_abs_diff", float("inf")), RENDER_TOL["TensorRT fp32" if trt else r["precision"]],
                r.get("error", "")))
        self.result.update(render=renders, render_size=[s.render, s.render], tensorrt=tensorrt)

    def budget(self) -> None:
        run_length = (UNLIMITED_STEPS, duration_seconds(self.sizes.budget))  # as `train --time-budget`
        cfg = self.image_cfg.replace(**folder_values("image", *self.image_cfg.size, *run_length),
                                     device=self.device.type)
        self.result["budget"] = budget_training(cfg, self.sizes.budget, self.work / "budget")


def run_check(check_: Check, sections: list[str], deadline: float, save) -> dict:
    """Each section in turn, the result saved after each; a later one that would start after
    `deadline` seconds (0: none) is skipped and says so. The first always runs."""
    t0, result = time.perf_counter(), check_.result
    for name in sections:
        start = time.perf_counter()
        if deadline and result["sections"] and start - t0 > deadline:
            result.setdefault("skipped", []).append(name)
            continue
        getattr(check_, name)()
        result["seconds"][name] = time.perf_counter() - start
        result["sections"].append(name)
        save(result)
    return result


def _has_tensorrt() -> bool:
    try:
        import onnxruntime  # optional: the [cpu] or [gpu] extra
    except ImportError:
        return False
    return "TensorrtExecutionProvider" in onnxruntime.get_available_providers()


def _providers() -> list[str]:
    try:
        import onnxruntime  # optional: the [cpu] or [gpu] extra
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def write(out: Path, name: str, result: dict, final: bool) -> None:
    """gpu_<name>.json always; the report (.md) and targets once every section is in."""
    out.mkdir(parents=True, exist_ok=True)
    if final:
        result["targets"] = targets(result)
    atomic_write(out / f"gpu_{name}.json", (json.dumps(result, indent=2) + "\n").encode())
    if final:
        atomic_write(out / f"gpu_{name}.md", markdown(result).encode())


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--data-dir", help="folder holding cifar10_train10k_images.npy and meshes/ "
                    "(default: ../shared/data beside the repository)")
    ap.add_argument("--out", default=str(RESULTS), help="folder for gpu_<device>.json and .md")
    ap.add_argument("--dry-run", action="store_true", help="the same code on the CPU, tiny sizes")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of "
                    f"{','.join(SECTIONS)} (default: all)")
    ap.add_argument("--work", help="folder kept between invocations (default: a temporary one)")
    ap.add_argument("--deadline", type=float, default=0.0, help="seconds: later sections are skipped")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="join these results into one report "
                    "(no run)")
    args = ap.parse_args(argv)
    if args.merge:
        result = merge([json.loads(Path(f).read_text()) for f in args.merge])
        write(Path(args.out), result["device"], result, final=True)
        print(markdown(result))
        return 0 if all(c["passed"] for c in result["checks"]) else 1
    sections = [x for x in args.sections.split(",") if x]
    if not sections or set(sections) - set(SECTIONS):
        print(f"error: --sections takes {','.join(SECTIONS)}", file=sys.stderr)
        return 2
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here, nothing to check (--dry-run runs the same code on the CPU)")
        return 0
    device = torch.device("cpu" if args.dry_run else "cuda")
    name, out, t = device_name(args.dry_run), Path(args.out), time.perf_counter()
    head = {"benchmark": "gpu_check", "device": name, "dry_run": args.dry_run,
            "gpu": None if args.dry_run else torch.cuda.get_device_name(),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
            "python": platform.python_version(), "onnxruntime_providers": _providers()}
    complete = set(sections) == set(SECTIONS)
    save = lambda r: write(out, name, {**head, "total_seconds": time.perf_counter() - t, **r}, False)  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            result = run_check(Check(args, device, DRY if args.dry_run else FULL, work), sections,
                               args.deadline, save)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    result = {**head, "total_seconds": time.perf_counter() - t, **result}
    complete = complete and not result.get("skipped")
    write(out, name, result, final=complete)
    if complete:
        print(markdown(result))
    done = " and .md" if complete else f" (sections: {','.join(result['sections'])})"
    print(f"wrote {out / f'gpu_{name}.json'}{done}")
    return 0 if all(c["passed"] for c in result["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
