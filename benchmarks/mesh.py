"""Peak memory and time of `inr-gon mesh`'s extraction (SDF volume + marching cubes) at
R = 128, 256, 512, each in a fresh process (peak RSS from getrusage, so it includes Python,
torch and the libraries: about 0.4 GB before any work).

    python benchmarks/mesh.py [--run RUN] [--resolutions 128 256 512]

Without --run the SDF is a SIREN decoder whose output is shifted so its zero level set is a
sphere-like surface (untrained weights, so its surface is wrinkled: a hard case for the
coarse-to-fine pass); with --run, the first training shape of that run. Each resolution runs
coarse to fine (default) and dense. Where both ran, the coarse-to-fine mesh is compared with the
dense one (Chamfer-L1, the largest distance from a dense-surface sample to it, components): what
the skipped blocks lost. Writes benchmarks/results/mesh.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from inr_gon.config import Config
from inr_gon.datasets.signed_distance import signed_distance
from inr_gon.inference.shape_metrics import components, surface_metrics
from inr_gon.models.gon import GON
from inr_gon.run import load_run
from inr_gon.shapes.mesh import extract_mesh, network_sdf, sdf_volume
from inr_gon.training.sdf import encode_shapes, training_shapes

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402


def one(resolution: int, dense: bool, run: str | None, keep: Path) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    if run:
        r = load_run(run)
        _, points, sdf, _, _ = training_shapes(r.cfg, 1, quiet=True)
        f = network_sdf(r.decoder, encode_shapes(r.model, points, sdf)[0])
    else:
        torch.manual_seed(0)
        model = GON(Config.of(modality="sdf", hidden=64, layers=3, latent_dim=8, w0=3.0, w0_hidden=3.0))
        g = network_sdf(model.decoder, torch.zeros(8))

        def f(p: np.ndarray) -> np.ndarray:  # a bumpy sphere of radius ~0.6
            return g(p) - g(np.zeros((1, 3), np.float32))[0] + np.linalg.norm(p, axis=1) - 0.6

    t = time.perf_counter()
    vol = sdf_volume(f, resolution, dense=dense)
    t_volume = time.perf_counter() - t
    mesh = extract_mesh(vol)
    if mesh is not None:
        mesh.export(keep)
    return {"resolution": resolution, "mode": "dense" if dense else "coarse-to-fine",
            "seconds_volume": round(t_volume, 2), "seconds_total": round(time.perf_counter() - t, 2),
            "faces": 0 if mesh is None else len(mesh.faces),
            "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def lost_detail(work: Path, r: int) -> dict:
    """What coarse to fine missed at R: its mesh against the dense one."""
    c2f, dense = (trimesh.load(work / f"{r}-{m}.ply", process=False) for m in ("coarse-to-fine", "dense"))
    pts, _ = trimesh.sample.sample_surface(dense, 100_000, seed=0)
    gap = signed_distance(c2f.vertices, c2f.faces, pts)
    return {"chamfer_l1": round(surface_metrics(c2f, dense, 30_000)["chamfer_l1"], 6),
            "max_gap_dense_to_c2f": round(float(np.abs(gap).max()), 5),
            "voxel": round(2 / r, 5), "components": [components(c2f), components(dense)]}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", default=None)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[128, 256, 512])
    ap.add_argument("--dense-up-to", type=int, default=256, help="skip dense above this R")
    ap.add_argument("--one", nargs=3, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1] == "dense", args.run, Path(args.one[2]))))
        return
    rows, work = [], Path(tempfile.mkdtemp(prefix="inr-gon-mesh-"))
    for r in args.resolutions:
        for mode in ["coarse-to-fine", "dense"]:
            if mode == "dense" and r > args.dense_up_to:
                continue
            cmd = [sys.executable, __file__, "--one", str(r), mode, str(work / f"{r}-{mode}.ply")]
            cmd += ["--run", args.run] if args.run else []
            rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
            x = rows[-1]
            print(f"R={x['resolution']:>4} {x['mode']:<15} volume {x['seconds_volume']:>7.1f} s  "
                  f"total {x['seconds_total']:>7.1f} s  faces {x['faces']:>9,}  "
                  f"peak RSS {x['peak_rss_gib']:.2f} GiB",
                  flush=True)
        if (work / f"{r}-dense.ply").exists() and (work / f"{r}-coarse-to-fine.ply").exists():
            rows[-1]["against_coarse_to_fine"] = lost_detail(work, r)
            print(f"R={r:>4} coarse-to-fine vs dense: {rows[-1]['against_coarse_to_fine']}")
    out = Path(__file__).parent / "results" / "mesh.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"run": args.run, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
                               "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
