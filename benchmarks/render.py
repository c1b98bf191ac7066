"""Render throughput of one decoder: torch eager, torch.compile, onnxruntime fp32, fp16, int8.

    python benchmarks/render.py [--size 512] [--batch 1] [--repeats 3] [--run RUN]

Each backend renders size x size images for a batch of latents through its product path
(`inr_gon.models.render.render_images`; `inr_gon.export.runtime.decode_points` for onnxruntime), in
the same chunks. Backends alternate within every repeat (A B C D, A B C D, ...) with a float32
matmul of the decoder's own shape, so machine noise hits all alike; medians are quoted.
Prints coordinates/s, the ratio to torch eager, the fraction of the measured matmul peak
(FLOPs per coordinate = 2 x sum of in x out over the layers) and each backend's PSNR against
torch eager's images (what lower precision costs: give --run a trained run, since an untrained
decoder's images say little); writes JSON to benchmarks/results/render.json.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from inr_gon.config import Config
from inr_gon.export.check import training_items
from inr_gon.export.onnx import decoder_proto, save_onnx
from inr_gon.export.quantize import int8_proto
from inr_gon.export.runtime import decode_points, open_session
from inr_gon.metrics import psnr
from inr_gon.models.gon import GON
from inr_gon.models.render import DEFAULT_MAX_MEMORY, grid, points_per_chunk, render_images
from inr_gon.run import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser, timed  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def onnx_backend(decoder, precision: str, tmp: str, max_memory: int):
    """precision: fp32 | fp16 | int8, the files `inr-gon export` writes."""
    path = Path(tmp) / f"decoder_{precision}.onnx"
    proto = decoder_proto(decoder, precision == "fp16")
    save_onnx(int8_proto(proto, decoder.out.in_features) if precision == "int8" else proto, path)
    s = open_session(path, "cpu", quiet=True, parallel=True)  # as onnx_renderer
    hidden = decoder.out.in_features

    def run(z, h, w):
        return decode_points(s, grid(h, w).numpy(), z.numpy(), hidden, max_memory).clip(0, 1)

    return run, s.provider


def compiled_backend(decoder, max_memory: int):
    fast = copy.deepcopy(decoder)
    fast.forward = torch.compile(fast.forward)  # the per-chunk work of decode_chunked
    return lambda z, h, w: render_images(fast, z, h, w, max_memory)


def matmul_probe(decoder, batch: int, max_memory: int):
    """The decoder's hidden-layer product at its chunk shape: [B * chunk, H] @ [H, H]."""
    hidden = decoder.out.in_features
    rows = batch * points_per_chunk(hidden, batch, max_memory)
    a, b = torch.randn(rows, hidden), torch.randn(hidden, hidden)
    return (lambda: a @ b), 2 * rows * hidden * hidden


def main() -> None:
    p = parser(__doc__, size=512, repeats=3, threads=torch.get_num_threads(),
               out=str(RESULTS / "render.json"))
    p.add_argument("--run", help="a run folder (default: an untrained decoder of the shape below)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--max-memory", type=int, default=DEFAULT_MAX_MEMORY // 2**20, help="MiB per call")
    p.add_argument("--skip", default="", help="comma-separated backends to leave out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.run:  # the latents of training items: what the run renders
        r = load_run(args.run)
        decoder, items = r.decoder, training_items(r.cfg, args.batch)
        z = r.model.encode(items.coords, items.values).detach()
    else:
        cfg = Config.of(hidden=args.hidden, layers=args.layers, latent_dim=args.latent_dim)
        decoder = GON(cfg).decoder.eval()
        z = torch.randn(args.batch, decoder.latent_size)
    mem = args.max_memory * 2**20
    h = w = args.size
    coords = args.batch * h * w
    probe, probe_flops = matmul_probe(decoder, args.batch, mem)

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        backends = {"torch eager": lambda z, h, w: render_images(decoder, z, h, w, mem)}
        notes = {}
        skip = set(args.skip.split(","))
        candidates = {"torch.compile": lambda: compiled_backend(decoder, mem),
                      **{f"onnxruntime {p}": lambda p=p: onnx_backend(decoder, p, tmp, mem)[0]
                         for p in ("fp32", "fp16", "int8")}}
        first = {}
        for name, make in candidates.items():
            if name in skip:
                continue
            try:
                fn = make()
                t0 = time.perf_counter()
                first[name] = fn(z, h, w)  # warm-up: compilation, session arenas
                notes[name] = f"warm-up {time.perf_counter() - t0:.1f} s"
                backends[name] = fn
            except Exception as e:  # a backend that does not work here is reported, not fatal
                notes[name] = f"unavailable: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
        first["torch eager"] = backends["torch eager"](z, h, w)
        ref = first["torch eager"]  # [B, H, W, C]; onnxruntime's come as [B, H*W, C]
        scores = {name: float(psnr(img.reshape(ref.shape), ref).mean()) for name, img in first.items()}
        times = {name: [] for name in [*backends, "matmul"]}
        for _ in range(args.repeats):
            for name, fn in backends.items():
                times[name].append(timed(lambda fn=fn: fn(z, h, w)))
            times["matmul"].append(min(timed(probe) for _ in range(5)))

    peak = probe_flops / statistics.median(times["matmul"])
    flops = decoder.flops_per_point()
    eager = coords / statistics.median(times["torch eager"])
    rows = []
    print(f"{h}x{w} x {args.batch} latents, hidden {decoder.out.in_features}, "
          f"{len(decoder.hidden) + 1} sine layers, {flops} FLOPs/coordinate, {args.threads} threads, "
          f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s (median of {args.repeats})")
    print(f"{'backend':<18} {'Mcoord/s':>9} {'vs eager':>9} {'of peak':>8} {'PSNR vs eager':>14}   "
          "spread (min-max s)")
    for name, ts in times.items():
        if name == "matmul":
            continue
        rate = coords / statistics.median(ts)
        row = {"backend": name, "coords_per_s": rate, "ratio_to_eager": rate / eager,
               "fraction_of_peak": rate * flops / peak, "psnr_vs_eager_db": scores[name],
               "seconds": ts, "note": notes.get(name, "")}
        rows.append(row)
        print(f"{name:<18} {rate / 1e6:9.3f} {rate / eager:8.2f}x {rate * flops / peak:7.0%} "
              f"{scores[name]:11.1f} dB   {min(ts):.2f}-{max(ts):.2f}")
    for name, note in notes.items():
        if note.startswith("unavailable"):
            print(f"{name}: {note}")
    report = {"size": [h, w], "batch": args.batch, "threads": args.threads, "repeats": args.repeats,
              "hidden": decoder.out.in_features, "layers": len(decoder.hidden) + 1,
              "flops_per_coordinate": flops, "matmul_peak_flops": peak, "max_memory_mib": args.max_memory,
              "results": rows, "notes": notes, "torch": torch.__version__,
              "onnxruntime": _ort_version(), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _ort_version() -> str | None:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except ImportError:
        return None


if __name__ == "__main__":
    main()
