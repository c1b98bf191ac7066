"""gpu_check.py's short trainings: the CPU fp32 reference, then each CUDA path of
`inr_gon.training.train.train` (eager, --compile, --precision tf32 and bf16, and one torchrun rank),
each loss curve checked against the reference.

    python -m torch.distributed.run --standalone --nproc-per-node 1 benchmarks/gpu_train.py SPEC

runs `worker` as a rank (gpu_check.py does this itself): NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from inr_gon.config import UNLIMITED_STEPS, Config
from inr_gon.models.gon import GON
from inr_gon.training.tasks import make_task
from inr_gon.training.train import read_metrics, train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from gpu_report import check  # noqa: E402
from gpu_speed import peak_memory, set_tf32  # noqa: E402

# fp32 variants: the loss curve, max over logged steps of |loss - CPU fp32 loss| / CPU fp32 loss;
# they differ from the CPU by summation order only. TF32 and bf16 (REDUCED): the held-out metric
# at the end, no worse than the CPU fp32 run's by more than the tolerance (relative). Their loss
# curves are recorded but not judged: on an H200 (2026-12-04) the SDF bf16 run left the early
# plateau sooner than fp32 (loss 0.0169 vs 0.0237 at step 60, held-out L1 0.0173 vs 0.0239),
# 34% off the curve while better, so a two-sided curve bound measures chaos, not precision.
LOSS_TOL = {"eager fp32": 0.02, "compile fp32": 0.02, "torchrun fp32": 0.02, "tf32": 0.05, "bf16": 0.15}
REDUCED = ("tf32", "bf16")
TRAIN_VARIANTS = {"eager fp32": {}, "compile fp32": {"compile": True}, "tf32": {"precision": "tf32"},
                  "bf16": {"precision": "bf16"}, "torchrun fp32": {}}


def losses(run_dir: Path) -> list[list[float]]:
    return [[r["step"], r["loss"]] for r in read_metrics(run_dir) if "loss" in r]


def train_here(cfg: Config, out: Path, device: torch.device) -> dict:
    """`inr_gon.training.train.train` in this process; seconds, peak memory, the loss curve, and the
    warnings it printed (a failed torch.compile says so there, then trains eagerly)."""
    t, result, err = time.perf_counter(), {}, io.StringIO()
    with contextlib.redirect_stderr(err):
        mem = peak_memory(lambda: result.update(r=train(cfg, out, quiet=True)), device)
    set_tf32(False)  # device.configure set the process-wide switch for this run
    r = result["r"]
    return {"seconds": time.perf_counter() - t, "peak_memory_bytes": mem, "losses": losses(out),
            "train_metric": r.train_metric, "val_metric": r.val_metric, "metric": r.metric,
            "warnings": [w for w in err.getvalue().splitlines() if w.startswith("warning:")]}


def train_torchrun(cfg: Config, out: Path, tmp: Path, launch: bool) -> dict:
    """The worker under `torchrun --nproc-per-node 1` (launch), or, in the dry run, in this
    process as the same single rank of a gloo group (the launcher alone costs ~20 s of imports
    on a loaded 2-core machine)."""
    spec = {"cfg": cfg.to_dict(), "out": str(out), "result": str(tmp / f"{out.name}.worker.json")}
    t = time.perf_counter()
    if launch:
        (tmp / f"{out.name}.spec.json").write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
               __file__, str(tmp / f"{out.name}.spec.json")]
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
    device = torch.device(cfg.train.device)
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
        torch.manual_seed(cfg.train.seed)
        plain = GON(task.cfg).to(device)
        ddp_model = GON(task.cfg).to(device)
        ddp_model.load_state_dict(plain.state_dict())
        ids = [device.index] if device.type == "cuda" else None
        ddp = torch.nn.parallel.DistributedDataParallel(ddp_model, device_ids=ids)
        for m in (plain, ddp):
            m(coords, values)["loss"].backward()
        g = [torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (plain, ddp_model)]
        done = {}
        mem = peak_memory(lambda: done.update(r=train(cfg, Path(spec["out"]), quiet=True)), device)
    finally:
        dist.destroy_process_group()
    Path(spec["result"]).write_text(json.dumps({
        "backend": backend, "world_size": size,
        "all_reduce_ok": bool(torch.all(x == size * (size + 1) / 2)),
        "ddp_grad_rel": relative(g[1], g[0]), "grad_norm": float(g[0].norm()),
        "peak_memory_bytes": mem, "val_metric": done["r"].val_metric, "metric": done["r"].metric}))
    return 0


def worse(row: dict, ref: dict) -> float:
    """How much worse row's held-out metric is than ref's, relative (0 when better): PSNR is
    higher-better, the SDF L1 lower-better."""
    got, want = row.get("val_metric"), ref["val_metric"]
    if got is None or want is None:
        return float("inf")
    loss = (want - got) / abs(want) if ref["metric"] == "psnr" else (got - want) / abs(want)
    return max(loss, 0.0)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||; 0 when both are 0."""
    diff, ref = float((a.double() - b.double()).norm()), float(b.double().norm())
    return diff / ref if ref > 0 else (0.0 if diff == 0 else float("inf"))


def train_all(cfg: Config, device: torch.device, tmp: Path, dry_run: bool) -> tuple[dict, list]:
    """The CPU fp32 reference, then each variant on the device; rows and loss-curve checks."""
    name = cfg.summary.modality
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
        if change.get("compile") and "error" not in rows[variant]:
            failed = [w for w in rows[variant]["warnings"] if "torch.compile failed" in w]
            checks.append(check(f"{name} training {variant}: compiled (no fallback to eager)",
                                float(len(failed)), 0.0, "; ".join(failed)[:300]))
        got = dict(rows[variant].get("losses", []))
        rel = max((abs(got[s] - ref[s]) / abs(ref[s]) for s in ref if s in got), default=float("inf"))
        rel = rel if got.keys() == ref.keys() else float("inf")
        rows[variant]["loss_curve_rel"] = rel if math.isfinite(rel) else None
        if variant in REDUCED:
            checks.append(check(f"{name} training {variant}: held-out {rows['cpu fp32']['metric']} no "
                                "worse than CPU fp32", worse(rows[variant], rows["cpu fp32"]),
                                LOSS_TOL[variant], rows[variant].get("error", "")
                                or f"loss curve {rel:.3g} from CPU fp32 (not a pass/fail)"))
        else:
            checks.append(check(f"{name} training {variant}: loss curve vs CPU fp32", rel, LOSS_TOL[variant],
                                rows[variant].get("error", "")))
        if variant.startswith("torchrun") and "error" not in rows[variant]:
            w = rows[variant]
            checks.append(check(f"{name} torchrun {w['backend']}: all-reduce of one rank",
                                0.0 if w["all_reduce_ok"] else 1.0, 0.0))
            checks.append(check(f"{name} torchrun {w['backend']}: DDP gradient vs plain",
                                w["ddp_grad_rel"], 1e-6, f"gradient norm {w['grad_norm']:.3g}"))
    return rows, checks


def budget_training(cfg: Config, budget: str, out: Path) -> dict:
    """`inr-gon train --time-budget BUDGET` (no step limit) of cfg on the device: steps done,
    the rate, the held-out PSNR at the end and the curve of logged PSNR against seconds."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = cfg.replace(time_budget=budget, steps=UNLIMITED_STEPS, log_every=25, preview_every=0)
    row = train_here(cfg, out, torch.device(cfg.train.device))
    rows = read_metrics(out)
    logged = [r for r in rows if "loss" in r]
    # the eval record names the last step: fewer steps than --log-every log no loss line
    last = rows[-1] if rows else {"step": 0, "seconds": float("nan")}
    steps = last["step"]
    train_seconds = logged[-1]["seconds"] if logged and logged[-1]["step"] == steps else last["seconds"]
    return {"time_budget": budget, "config": {k: cfg.flat()[k] for k in (
                "modulation", "latent_grid", "latent_dim", "origin_step", "hidden", "layers",
                "batch_size", "lr", "precision", "compile")},
            "steps": steps, "steps_per_second": steps / train_seconds if steps else 0.0,
            "val_psnr": row["val_metric"], "train_psnr": row["train_metric"],
            "wall_seconds": row["seconds"], "peak_memory_bytes": row["peak_memory_bytes"],
            "curve": [[r["step"], r["seconds"], round(r["psnr"], 3)] for r in logged[::4]]}


if __name__ == "__main__":
    sys.exit(worker(json.loads(Path(sys.argv[1]).read_text())))
