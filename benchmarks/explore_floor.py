"""What a 512x512 view of a run's decoder costs at the least (issue 25's < 0.5 s target):
the real onnxruntime decode beside graphs of its parts alone, in one process, side by side.

    python benchmarks/explore_floor.py RUN [--side 512] [--repeats 5] [--out explore_floor]

Rows (median seconds of --repeats, the first call of each discarded):
- decode: the view through export.runtime.decode_points, as `explore --backend onnx` renders it;
- matmuls only: the hidden layers' [N, H] x [H, H] products and the output layer, no sines, no
  shifts, one onnxruntime graph (the same threads);
- sines only: the sine of every layer's [N, H] phases, one onnxruntime graph;
- torch fp32 / bf16 matmuls: the same products in torch, float32 and bfloat16 (what a CPU with
  native bf16 could gain; not a path of the package).
Writes results/OUT.json (with the machine and the load average at the start).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from inr_gon.explore.images import view_coords
from inr_gon.export.runtime import decode_points, open_session
from inr_gon.run import load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median_timed, parser, table, write_result  # noqa: E402


def chain_graph(hidden: int, layers: int, out: int, op: str) -> onnx.ModelProto:
    """x [N, H] through `layers` MatMuls (and the output one), or through `layers` Sins."""
    nodes, inits, prev = [], [], "x"
    for k in range(layers):
        if op == "matmul":
            w = helper.make_tensor(f"w{k}", TensorProto.FLOAT, [hidden, hidden],
                                   np.random.randn(hidden * hidden).astype(np.float32) / hidden)
            inits.append(w)
            nodes.append(helper.make_node("MatMul", [prev, f"w{k}"], [f"h{k}"]))
        else:
            nodes.append(helper.make_node("Sin", [prev], [f"h{k}"]))
        prev = f"h{k}"
    if op == "matmul":
        inits.append(helper.make_tensor("wo", TensorProto.FLOAT, [hidden, out],
                                        np.random.randn(hidden * out).astype(np.float32)))
        nodes.append(helper.make_node("MatMul", [prev, "wo"], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [prev], ["y"]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", hidden])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, op, [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    ap = parser(__doc__, repeats=5, out="explore_floor")
    ap.add_argument("run")
    ap.add_argument("--side", type=int, default=512)
    args = ap.parse_args()
    load = os.getloadavg()[0]
    cfg, n = load_config(Path(args.run)), args.side * args.side
    hidden, layers, out = cfg.net.hidden, cfg.net.layers, cfg.summary.channels
    coords = view_coords((-1.0, -1.0, 1.0, 1.0), (args.side, args.side)).numpy()
    z = np.zeros((1, cfg.latent_size), np.float32)  # the values do not change the work
    session = open_session(Path(args.run) / "decoder.onnx", "cpu", quiet=True, parallel=True)
    rows = {"decode": median_timed(lambda: decode_points(session, coords, z, hidden), args.repeats)}
    x = np.random.rand(n, hidden).astype(np.float32)
    for op, hidden_layers in (("matmul", layers - 1), ("sin", layers)):
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"explore_floor_{op}.onnx"
        onnx.save(chain_graph(hidden, hidden_layers, out, op), path)
        s = open_session(path, "cpu", quiet=True)
        rows[f"{op} only"] = median_timed(lambda s=s: s.run({"x": x}), args.repeats)
    xt = torch.from_numpy(x)
    for dtype in (torch.float32, torch.bfloat16):
        w = [torch.randn(hidden, hidden, dtype=dtype) / hidden for _ in range(layers - 1)]
        xd = xt.to(dtype)

        def products(xd=xd, w=w):
            h = xd
            for m in w:
                h = h @ m
            return h
        rows[f"torch {str(dtype).split('.')[-1]} matmuls"] = median_timed(products, args.repeats)
    print(table(["part", "seconds"], [[k, f"{v:.3f}"] for k, v in rows.items()]))
    write_result(args.out, {"run": args.run, "side": args.side, "hidden": hidden,
                                   "layers": layers, "machine": machine(), "load_avg_1m_start": load,
                                   "command": "python benchmarks/explore_floor.py " + " ".join(sys.argv[1:]),
                                   "median_seconds": rows})


if __name__ == "__main__":
    main()
