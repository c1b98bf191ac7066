"""Training-step speed: the original GON step against inr-gon's, side by side, and against the
machine's matmul peak.

    python benchmarks/train_step.py [--repeats 7] [--device cpu|cuda] [--precision fp32|tf32|bf16]
                                    [--compile] [--ablate] [--processes 3] [--threads N]

Reference config: SIREN 4 x 256, w0 30, latent 32, batch 64, 28 x 28, one channel, on real
Fashion-MNIST images (/work/shared/data, else built-in grey shapes). Variants:
- reference: the original code's step (reference_gon.py), checked first to give the same loss
  and weight gradients as inr-gon's (float64 to 1e-10 and float32 to 1e-4, relative);
- inr-gon: the training loop's own step (inr_gon.training.step.Stepper: shared-grid latent, w0 folded
  into the weights), under the process settings `inr-gon train` applies (inr_gon.device.configure);
- with --ablate: inr-gon with w0 not folded (the elementwise passes it saves);
- with --compile: inr-gon under torch.compile (compile time reported, not timed).
A float32 matmul of the step's main shape, [B*N, H] @ [H, H], is timed in every round too: the
peak. Variants alternate within each round (A B C P, A B C P, ...), so load on a shared machine
hits all alike; medians, and the ratio reference / inr-gon within each round, are quoted. FLOPs
are counted by torch's FlopCounterMode (matmuls, forward and backward).

In one process both steps share inr-gon's process settings (the allocator keeps freed memory,
which speeds the reference up too). --processes R adds R rounds of fresh processes, each timing
one variant as it would run on its own (A B C D, A B C D, ...): the reference under torch's
defaults, as the original script runs; inr-gon under `inr-gon train`'s settings, eager and (with
--compile) compiled; and inr-gon under the default allocator, which isolates that setting.
JSON: results/train_step_<device>_<threads>threads.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from inr_gon.config import Config
from inr_gon.datasets import load_images
from inr_gon.device import configure
from inr_gon.models.gon import GON
from inr_gon.models.render import grid
from inr_gon.models.siren import Siren
from inr_gon.training.step import Stepper, compiled

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, parser, table, timed, write_result  # noqa: E402
from reference_gon import ReferenceSiren, reference_loss, reference_step  # noqa: E402

FASHION = Path("/work/shared/data/fashion_sprite900_images.npy")


def batch(b: int, size: int, device) -> tuple[torch.Tensor, str]:
    """values [B, N, 1] of real images when available."""
    src = str(FASHION) if FASHION.exists() else f"builtin:shapes-gray:{b}"
    imgs = load_images(src, size, limit=b).images
    return torch.from_numpy(imgs).reshape(b, size * size, 1).to(device), src


def make_cfg(args, **kw) -> Config:
    return Config.of(height=args.size, width=args.size, channels=1, hidden=256, layers=4, latent_dim=32,
                     w0=30.0, batch_size=args.batch, precision=args.precision, threads=args.threads,
                     **kw)


class Unfolded(Siren):
    """inr-gon's decoder before the w0 folding: sin(w0 * x) scaled on every activation."""

    def forward(self, coords, z):
        h = torch.sin(self.w0 * (self.coord(coords) + self.latent(z).unsqueeze(-2)))
        for layer in self.hidden:
            h = torch.sin(self.w0_hidden * layer(h))
        return self.out(h)


def check_same(cfg: Config, x: torch.Tensor, coords: torch.Tensor, dtype) -> dict:
    """Relative errors of inr-gon's loss and weight gradients against the original step's."""
    torch.manual_seed(0)
    model = GON(cfg).to(x.device, dtype)
    x, coords = x.to(dtype), coords.to(dtype)
    ref = ReferenceSiren(model.decoder).to(x.device, dtype)
    b, n, c = x.shape
    ours = model(coords, x)["loss"]
    ours.backward()
    theirs = reference_loss(ref, coords.expand(b, n, -1), x, b * c / n)
    theirs.backward()
    g_ours = {k[len("decoder."):]: p.grad for k, p in model.named_parameters()}
    g_ref = ref.grads_as_ours(n)
    flat = lambda g: torch.cat([g[k].flatten() for k in sorted(g_ours)])  # noqa: E731
    return {"dtype": str(dtype).replace("torch.", ""), "batch": b,
            "loss_rel": abs(float(theirs.detach() / n - ours.detach()) / float(ours.detach())),
            "grad_rel": float((flat(g_ref) - flat(g_ours)).norm() / flat(g_ours).norm())}


def check_compiled(cfg: Config, x: torch.Tensor, coords: torch.Tensor) -> dict:
    """Relative error of the compiled step's weight gradients against eager ones."""
    torch.manual_seed(0)
    model = GON(cfg).to(x.device)
    grads, seconds = [], []
    for fn in (model, compiled(model)):
        model.zero_grad()
        seconds.append(timed(lambda: fn(coords, x)["loss"].backward(), x.device))  # noqa: B023
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    # the first compiled call compiles (inductor's on-disk cache may make a rerun quicker)
    return {"dtype": "float32 compiled vs eager", "batch": x.shape[0],
            "grad_rel": float((grads[1] - grads[0]).norm() / grads[0].norm()),
            "first_compiled_call_seconds": round(seconds[1], 1)}


def flops(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def variants(args, x, coords, device) -> dict:
    """name -> one training step (its own model and Adam)."""
    cfg = make_cfg(args)
    b, n, _ = x.shape
    torch.manual_seed(0)
    steps = {}
    ref_model = GON(cfg).to(device)
    ref = ReferenceSiren(ref_model.decoder).to(device)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-4)
    c_b = coords.expand(b, n, -1).contiguous()  # the original stacks one grid per item
    steps["reference"] = lambda: reference_step(ref, ref_opt, c_b, x, b * x.shape[-1] / n)

    def ours(name, model_cfg, unfolded=False):
        torch.manual_seed(0)
        model = GON(model_cfg).to(device)
        if unfolded:
            model.decoder.__class__ = Unfolded
        step = Stepper(model, torch.optim.Adam(model.parameters(), lr=1e-4), model_cfg, device)
        steps[name] = lambda: step(coords, x, None, 1e-4)

    ours("inr-gon", cfg)
    if args.ablate:
        ours("inr-gon, w0 not folded", cfg, unfolded=True)
    if args.compile:
        ours("inr-gon compiled", make_cfg(args, compile=True))
    return steps


def peak_probe(args, device):
    rows = args.batch * args.size * args.size
    a, w = torch.randn(rows, 256, device=device), torch.randn(256, 256, device=device)
    return (lambda: torch.mm(a, w)), 2 * rows * 256 * 256


SHIPPED = {"reference, torch defaults": ("reference", "default"),
           "inr-gon, as `inr-gon train`": ("inr-gon", "keep"),
           "inr-gon compiled, as `inr-gon train --compile`": ("inr-gon compiled", "keep"),
           "inr-gon, default allocator": ("inr-gon", "default")}


def process_rounds(args) -> dict:
    """Each variant in its own fresh process, alternating, args.processes rounds."""
    cases = {k: v for k, v in SHIPPED.items() if args.compile or "compiled" not in v[0]}
    res: dict[str, list[dict]] = {k: [] for k in cases}
    for _ in range(args.processes):
        for name, (variant, alloc) in cases.items():
            cmd = [sys.executable, __file__, "--child", f"{variant}:{alloc}", "--threads",
                   str(args.threads), "--batch", str(args.batch), "--size", str(args.size),
                   "--device", args.device, "--precision", args.precision]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr[-3000:])
            res[name].append(json.loads(out.stdout.splitlines()[-1]))
    ref = [r["seconds"] for r in res["reference, torch defaults"]]
    return {k: {"seconds": [r["seconds"] for r in v], "median_seconds": median([r["seconds"] for r in v]),
                "median_ratio": median([a / r["seconds"] for a, r in zip(ref, v)]),
                "minor_faults_per_step": median([r["faults"] for r in v])} for k, v in res.items()}


def child(args) -> None:
    """One variant in this fresh process: median of 3 steps after a warm-up, as JSON."""
    variant, alloc = args.child.split(":")
    device = torch.device(args.device)
    if alloc == "keep":  # inr-gon's process settings
        configure(make_cfg(args), device)
    elif args.threads:  # torch's defaults, but the same thread count
        torch.set_num_threads(args.threads)
    x, _ = batch(args.batch, args.size, device)
    steps = variants(argparse.Namespace(**{**vars(args), "ablate": False,
                                              "compile": variant == "inr-gon compiled"}),
                        x, grid(args.size, args.size, device), device)
    step = steps[variant]
    step()
    ts, f0 = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        ts.append(timed(step, device))
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 3
    print(json.dumps({"seconds": median(ts), "faults": faults}))


def main() -> None:
    ap = parser(__doc__, repeats=7, device="cpu", size=28, threads=0)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--ablate", action="store_true")
    ap.add_argument("--processes", type=int, default=0, help="rounds of fresh processes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    device = torch.device(args.device)
    applied = configure(make_cfg(args), device)  # what `inr-gon train` applies
    x, source = batch(args.batch, args.size, device)
    coords = grid(args.size, args.size, device)
    checks = [check_same(make_cfg(args), x[:8], coords, torch.float64),
              check_same(make_cfg(args), x, coords, torch.float32)]
    if args.compile:
        checks.append(check_compiled(make_cfg(args), x, coords))
    for c in checks:
        loss = f"loss rel. error {c['loss_rel']:.1e}, " if "loss_rel" in c else ""
        extra = (f" (first call, compiling: {c['first_compiled_call_seconds']} s)"
                 if "first_compiled_call_seconds" in c else "")
        print(f"same step ({c['dtype']}, batch {c['batch']}): {loss}gradient rel. error "
              f"{c['grad_rel']:.1e}{extra}")
    if checks[0]["grad_rel"] > 1e-10 or any(c["grad_rel"] > 1e-4 for c in checks[1:]):
        raise SystemExit("the reference and inr-gon disagree: not timing")
    steps = variants(args, x, coords, device)
    probe, probe_flops = peak_probe(args, device)
    counted = {k: flops(steps[k]) for k in ("reference", "inr-gon")}
    for fn in [*steps.values(), probe]:
        fn()  # warm-up
    times: dict[str, list[float]] = {k: [] for k in [*steps, "matmul"]}
    faults: dict[str, list[float]] = {k: [] for k in steps}
    start_load = machine(device)["load_avg_1m"]
    for _ in range(args.repeats):
        for k, fn in steps.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            times[k].append(timed(fn, device))
            faults[k].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        times["matmul"].append(timed(probe, device))
    report(args, source, applied, checks, steps, times, faults, counted, probe_flops, start_load,
           process_rounds(args) if args.processes else None, device)


def report(args, source, applied, checks, steps, times, faults, counted, probe_flops,
           start_load, alloc, device) -> None:
    med = {k: median(v) for k, v in times.items()}
    peak = probe_flops / med["matmul"]
    ref = times["reference"]
    rows, out = [], {}
    for k in steps:
        ratios = [r / t for r, t in zip(ref, times[k])]
        frac = counted["inr-gon"] / med[k] / peak if k != "reference" else counted[k] / med[k] / peak
        rows.append([k, f"{med[k]:.3f}", f"{median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}",
                     f"{100 * frac:.0f}%", f"{median(faults[k]):.0f}"])
        out[k] = {"seconds": times[k], "median_seconds": med[k], "ratio_per_round": ratios,
                  "median_ratio": median(ratios), "fraction_of_peak": frac,
                  "minor_faults_per_step": median(faults[k])}
    b, n = args.batch, args.size ** 2
    print(f"\n{args.repeats} rounds, batch {b} x {args.size}x{args.size}, SIREN 4 x 256, latent 32, "
          f"{args.precision}, {device}, {applied['threads']} threads; data {source}")
    print(table(["variant", "median s/step", "ref/this", "range", "of peak", "faults/step"], rows))
    print(f"matmul peak (median): {peak / 1e9:.1f} GFLOP/s; FLOPs/step: reference "
          f"{counted['reference'] / 1e9:.1f} G, inr-gon {counted['inr-gon'] / 1e9:.1f} G; inr-gon "
          f"{b / med['inr-gon']:.1f} images/s, {b * n / med['inr-gon'] / 1e6:.2f} M coordinates/s")
    if alloc:
        rows = [[m, f"{v['median_seconds']:.3f}", f"{v['median_ratio']:.2f}x",
                 f"{v['minor_faults_per_step']:.0f}"] for m, v in alloc.items()]
        print(f"\n{args.processes} rounds of fresh processes, one variant each:")
        print(table(["variant", "median s/step", "ref/this", "faults/step"], rows))
    path = write_result(f"train_step_{device.type}_{applied['threads']}threads", {
        "machine": {**machine(device), "load_avg_1m_at_start": start_load}, "args": vars(args),
        "data": source, "perf": applied, "checks": checks, "variants": out,
        "matmul": {"shape": [b * n, 256, 256], "seconds": times["matmul"], "gflops": peak / 1e9},
        "flops_per_step": counted, "images_per_s": b / med["inr-gon"],
        "coordinates_per_s": b * n / med["inr-gon"], "processes": alloc})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
