"""Signed distance throughput on one core: ours (libigl, both sign paths) beside libigl's own
`signed_distance` and trimesh's, on a 10,000-face torus, with two point mixes:
- deepsdf: DeepSDF-style sampling as mesh_to_sdf does it: 47% + 47% of the points near the
  surface at noise variances 0.0025 and 0.00025 (std 0.05, 0.0158), 6% uniform in the cube;
- inr-gon: inr-gon's default sampling (std 0.01/0.05/0.15, a 0.8 share uniform; why so many
  far points: datasets/sampling.py). Far points cost a closest-point query several times more.

    IGL_NUM_THREADS=1 python benchmarks/sdf.py [--points 200000] [--repeats 3] [--mix deepsdf inr-gon]

Points/s are per CPU second of this process (libigl pinned to one thread), so other load on
the machine changes them less than wall time; both are reported. Methods run alternately
(A B C A B C ...), the table gives medians. Errors are against the exact distance (libigl's
AABB) and the signs against the exact (not fast) winding number. trimesh's needs `rtree` (not a dependency of
inr-gon: `pip install rtree` to include it) and runs on a 1% subset, it is that slow.
Writes benchmarks/results/sdf.json.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("IGL_NUM_THREADS", "1")  # before igl is imported: one core

import numpy as np  # noqa: E402
import trimesh  # noqa: E402

from inr_gon.datasets.meshes import normalise  # noqa: E402
from inr_gon.datasets.sampling import Sampling, sample_points  # noqa: E402
from inr_gon.datasets.signed_distance import signed_distance  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402  # noqa: E402

MIXES = {"deepsdf": {"noise": (0.05, 0.0158), "uniform": 0.06},
         "inr-gon": {"noise": (0.01, 0.05, 0.15), "uniform": 0.8}}


def timed(fn):
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def main() -> None:
    ap = parser(__doc__, repeats=3)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--mix", nargs="+", choices=list(MIXES), default=list(MIXES))
    args = ap.parse_args()
    torus, _, _ = normalise(trimesh.creation.torus(1.0, 0.4, major_sections=100, minor_sections=50))
    assert len(torus.faces) == 10_000 and torus.is_volume
    v, f = np.asarray(torus.vertices), np.asarray(torus.faces, dtype=np.int64)
    report = {"faces": len(f), "repeats": args.repeats, "igl_num_threads": os.environ["IGL_NUM_THREADS"],
              "machine": platform.machine(), "python": platform.python_version(), "mixes": []}
    for mix in args.mix:
        s = Sampling(args.points, **MIXES[mix])
        points = sample_points(torus.sample(args.points, seed=1), s, np.random.default_rng(0))
        print(f"\npoint mix {mix}: {s.key()}")
        rows = bench(torus, v, f, points, args.repeats)
        report["mixes"].append({"mix": mix, "sampling": s.key(), "load_average": os.getloadavg()[0],
                                "rows": rows})
    out = Path(__file__).parent / "results" / "sdf.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def bench(torus, v, f, points, repeats: int) -> list[dict]:
    import igl

    small = points[:: 100]
    methods = {
        "inr-gon, closed path (pseudonormal)": (points, lambda p: signed_distance(v, f, p, closed=True)),
        "inr-gon, winding path (any mesh)": (points, lambda p: signed_distance(v, f, p, closed=False)),
        "igl.signed_distance(FAST_WINDING_NUMBER)": (points, lambda p: igl.signed_distance(
            p, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER)[0]),
    }
    try:
        import rtree  # noqa: F401

        methods["trimesh.proximity.signed_distance (1% subset)"] = (
            small, lambda p: -trimesh.proximity.signed_distance(torus, p))  # trimesh: + inside
    except ImportError:
        print("trimesh's signed_distance skipped: it needs rtree (pip install rtree)")
    exact = np.sqrt(igl.point_mesh_squared_distance(points, v, f)[0])
    inside = np.abs(igl.winding_number(v, f, points)) > 0.5  # exact winding number: the reference
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in methods}
    results = {}
    for _ in range(repeats):
        for name, (p, fn) in methods.items():
            d, cpu, wall = timed(lambda fn=fn, p=p: fn(p))
            times[name].append((cpu, wall))
            results[name] = np.asarray(d)
    rows = []
    for name, (p, _) in methods.items():
        cpu = statistics.median(t[0] for t in times[name])
        wall = statistics.median(t[1] for t in times[name])
        ref = exact if len(p) == len(points) else exact[:: 100]
        ins = inside if len(p) == len(points) else inside[:: 100]
        d = results[name]
        rows.append({"method": name, "points": len(p), "points_per_cpu_s": len(p) / cpu,
                     "points_per_cpu_s_range": [len(p) / max(t[0] for t in times[name]),
                                                len(p) / min(t[0] for t in times[name])],
                     "points_per_wall_s": len(p) / wall,
                     "max_abs_error": float(np.abs(np.abs(d) - ref).max()),
                     "sign_agreement": float(((d < 0) == ins).mean())})
    print(f"{'method':<48} {'points':>8} {'pts/CPU-s':>11} {'(min - max)':>19} {'pts/wall-s':>11} "
          f"{'max |err|':>10} {'signs':>7}")
    for r in rows:
        lo, hi = r["points_per_cpu_s_range"]
        print(f"{r['method']:<48} {r['points']:>8} {r['points_per_cpu_s']:>11,.0f} "
              f"{f'({lo:,.0f} - {hi:,.0f})':>19} {r['points_per_wall_s']:>11,.0f} "
              f"{r['max_abs_error']:>10.2e} {r['sign_agreement']:>7.4f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; target: 500,000 points/s")
    return rows


if __name__ == "__main__":
    main()
