"""Render throughput of the reference SIREN (4 x 256, latent 32) through every torch path of
gpu_check's render section, plus fp16 compiled with max-autotune: coordinates/s at SIZE x SIZE.
Weights at their initialisation (throughput does not depend on them; gpu_check renders a
trained decoder). Needs no data, so it runs on a bare machine in a minute or two.

    python benchmarks/gpu_render.py [--size 4096] [--out benchmarks/results]
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inr_gon.config import Config
from inr_gon.export.onnx import DecoderGraph
from inr_gon.io import atomic_write
from inr_gon.models.gon import GON
from inr_gon.models.render import render_images

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402
from gpu_speed import _GraphDecoder, matmul_peaks, seconds, time_renders  # noqa: E402

BIG = 8 * 2**30  # --max-memory of the large-chunk rows


def max_autotune_fp16(dec, z: torch.Tensor, size: int, device: torch.device) -> dict:
    """The fp16 graph compiled with mode max-autotune-no-cudagraphs (Triton GEMM templates
    tried per shape), in BIG chunks, against the product's fp32 render."""
    graph = DecoderGraph(dec.cpu(), True).to(device).eval()
    fast = _GraphDecoder(dec, torch.compile(graph, mode="max-autotune-no-cudagraphs",
                                            dynamic=False)).to(device)
    t = time.perf_counter()
    image = render_images(fast, z, size, size, BIG)
    first = time.perf_counter() - t
    ts = seconds(lambda: render_images(fast, z, size, size, BIG), device, 5, warmup=False)
    want = render_images(dec.to(device), z, size, size)
    return {"backend": "torch.compile max-autotune, 8192 MiB chunks", "precision": "fp16",
            "coords_per_s": size * size / float(np.median(ts)), "seconds": ts,
            "first_call_seconds": first, "max_abs_diff": float(np.abs(image - want).max())}


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__, size=4096, out=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    torch.manual_seed(0)
    dec = GON(Config.of(hidden=256, layers=4, latent_dim=32)).decoder.eval()
    z = torch.randn(1, 32, device=device) * 0.1
    peaks = matmul_peaks(device, 8192 if cuda else 128)
    rows = time_renders(dec, z, args.size, device, 5, peaks, cuda, False, BIG if cuda else 2**20)
    if cuda:
        rows.append(max_autotune_fp16(dec, z, args.size, device))
    name = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name().lower()).strip("-") if cuda else "cpu"
    result = {"benchmark": "gpu_render", "gpu": torch.cuda.get_device_name() if cuda else None,
              "torch": torch.__version__, "size": args.size, "matmul_peak_flops": peaks, "render": rows}
    out = Path(args.out) / f"gpu_render_{name}.json"
    atomic_write(out, (json.dumps(result, indent=1) + "\n").encode())
    for r in rows:
        print(f"{r['backend']:<45} {r['precision']}  {r.get('coords_per_s', 0) / 1e6:8.1f} Mcoords/s  "
              f"max|diff| {r.get('max_abs_diff', float('nan')):.2g}  {r.get('error', '')}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
