"""Encoding throughput: the gradient-origin step in torch and in the two exported encoders.

    python benchmarks/encode.py [--size 64] [--batch 16] [--repeats 5]

torch: `GON.encode` on the shared grid (the shared-grid form, F(c, 0) and J once per batch).
onnxruntime general: encoder.onnx, the explicit cos chain with the grid as an input.
onnxruntime grid: encoder_grid.onnx, one MatMul + Add with A and b precomputed for the grid.
Backends alternate within every repeat; medians are quoted, with the largest difference from
torch. Writes JSON to benchmarks/results/encode.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from inr_gon.config import Config
from inr_gon.export.encoder import encoder_proto, grid_encoder_proto
from inr_gon.export.onnx import save_onnx
from inr_gon.export.runtime import open_session
from inr_gon.models.gon import GON
from inr_gon.models.render import grid

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def sessions(model: GON, coords: torch.Tensor, tmp: str):
    general = encoder_proto(model)
    t = time.perf_counter()
    affine = grid_encoder_proto(model, coords)  # A and b for the grid, then tracing
    prep = time.perf_counter() - t
    out = {}
    for name, proto in (("general", general), ("grid", affine)):
        path = Path(tmp) / f"{name}.onnx"
        save_onnx(proto, path)
        out[name] = open_session(path, "cpu", quiet=True)
    return out["general"], out["grid"], prep


def main() -> None:
    p = parser(__doc__, size=64, repeats=5, out=str(RESULTS / "encode.json"))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--latent-dim", type=int, default=32)
    args = p.parse_args()
    torch.manual_seed(0)
    cfg = Config.of(height=args.size, width=args.size, hidden=args.hidden, layers=args.layers,
                    latent_dim=args.latent_dim, channels=3)
    model = GON(cfg).eval()
    coords = grid(args.size, args.size)
    values = torch.rand(args.batch, coords.shape[0], 3)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        general, affine, prep = sessions(model, coords, tmp)
        x, c = values.numpy(), coords[None].numpy()
        backends = {"torch (shared grid)": lambda: model.encode(coords, values).numpy(),
                    "onnxruntime general": lambda: general.run({"coords": c, "values": x}),
                    "onnxruntime grid": lambda: affine.run({"values": x})}
        ref = backends["torch (shared grid)"]()
        diffs = {k: float(abs(f() - ref).max()) for k, f in backends.items()}
        times = {k: [] for k in backends}
        for _ in range(args.repeats):
            for k, f in backends.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    base = statistics.median(times["torch (shared grid)"])
    print(f"{args.batch} images {args.size}x{args.size}x3, hidden {args.hidden}, {args.layers} sine layers, "
          f"latent {args.latent_dim} (max |z| {float(abs(ref).max()):.3g}), "
          f"{torch.get_num_threads()} threads; "
          f"building encoder_grid.onnx (A and b) took {prep:.2f} s")
    print(f"{'backend':<22} {'signals/s':>10} {'vs torch':>9} {'max |dz|':>9}")
    rows = []
    for k, ts in times.items():
        rate = args.batch / statistics.median(ts)
        rows.append({"backend": k, "signals_per_s": rate, "ratio_to_torch": base / statistics.median(ts),
                     "max_abs_diff": diffs[k], "seconds": ts})
        print(f"{k:<22} {rate:10.1f} {base / statistics.median(ts):8.2f}x {diffs[k]:9.2e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"args": vars(args), "precompute_s": prep, "results": rows,
                                          "when": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
