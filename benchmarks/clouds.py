"""Scans in, watertight meshes out: a point cloud of each held-out mesh fitted and meshed by
the real command, timed from the shell, scored against the mesh it was sampled from.

    python benchmarks/clouds.py RUN [--meshes DIR] [--points 5000] [--refine-steps 0,30,100]
        [--kinds oriented,unoriented] [--out clouds]

For each held-out mesh of benchmarks/shapes.py's split (seed 0), N surface points are drawn
area-weighted in the mesh's own frame, with face normals (.ply) and without (.xyz); then
`inr-gon mesh RUN CLOUD --refine-steps K -r 256 --original-frame` runs in a fresh process
(wall clock: start-up, reading, fitting, refining, meshing, writing). The mesh it writes is
scored in the truth's normalised frame: IoU over 100,000 uniform points of the cube (inside
by winding number), Chamfer-L1 and normal consistency (inference/shape_metrics.py).
Writes benchmarks/results/OUT.json and prints the table.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks
from common import machine, parser, table, write_result  # noqa: E402
from shapes import DEFAULT_MESHES, held_out  # noqa: E402

from inr_gon.datasets.meshes import normalising_frame  # noqa: E402
from inr_gon.datasets.signed_distance import signed_distance  # noqa: E402
from inr_gon.inference.shape_metrics import iou, mesh_parts, surface_metrics  # noqa: E402

IOU_POINTS, RESOLUTION = 100_000, 256


def write_clouds(mesh: trimesh.Trimesh, n: int, folder: Path, name: str) -> dict[str, Path]:
    """N area-weighted surface samples -> name.ply (with normals) and name.xyz (without)."""
    points, faces = trimesh.sample.sample_surface(mesh, n, seed=0)
    normals = mesh.face_normals[faces]
    ply, xyz = folder / f"{name}.ply", folder / f"{name}.xyz"
    header = ["ply", "format ascii 1.0", f"element vertex {n}", "property float x",
              "property float y", "property float z", "property float nx", "property float ny",
              "property float nz", "end_header"]
    rows = [" ".join(f"{v:.7g}" for v in row) for row in np.hstack([points, normals])]
    ply.write_text("\n".join(header + rows) + "\n")
    np.savetxt(xyz, points, fmt="%.7g")
    return {"oriented": ply, "unoriented": xyz}


def score(pred_path: Path, truth: trimesh.Trimesh) -> dict:
    """pred (original frame) against truth, both moved to truth's normalised frame."""
    center, scale = normalising_frame(truth.vertices)
    pred = trimesh.load(pred_path, process=False)
    t, p = truth.copy(), pred.copy()
    t.vertices, p.vertices = (t.vertices - center) * scale, (p.vertices - center) * scale
    cube = np.random.default_rng(0).uniform(-1, 1, (IOU_POINTS, 3))
    row = {"iou": iou(signed_distance(p.vertices, p.faces, cube) < 0,
                      signed_distance(t.vertices, t.faces, cube) < 0)}
    return {**row, **surface_metrics(p, t, 30_000), **mesh_parts(p, t)}


def main() -> None:
    ap = parser(__doc__, out="clouds")
    ap.add_argument("run", type=Path)
    ap.add_argument("--meshes", type=Path, default=DEFAULT_MESHES)
    ap.add_argument("--points", type=int, default=5000)
    ap.add_argument("--refine-steps", default="0,30,100")
    ap.add_argument("--kinds", default="oriented,unoriented", help="which clouds of each mesh")
    args = ap.parse_args()
    files = sorted(p for p in args.meshes.iterdir() if p.suffix == ".obj")
    held = [files[i] for i in held_out(len(files))]
    rows, work = [], Path(tempfile.mkdtemp(prefix="inr-gon-clouds-"))
    for path in held:
        truth = trimesh.load(path, force="mesh", process=False)
        for kind, cloud in write_clouds(truth, args.points, work, path.stem).items():
            if kind not in args.kinds.split(","):
                continue
            for k in (int(s) for s in args.refine_steps.split(",")):
                out = work / f"{path.stem}-{kind}-{k}"
                cmd = ["inr-gon", "mesh", str(args.run), str(cloud), "-r", str(RESOLUTION),
                       "--refine-steps", str(k), "--original-frame", "--out", str(out), "--quiet"]
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                seconds = time.perf_counter() - t
                row = {"mesh": path.stem, "cloud": kind, "refine_steps": k,
                       "seconds": round(seconds, 1), **score(next(out.glob("*.ply")), truth)}
                rows.append(row)
                print(f"{path.stem} {kind} K={k}: IoU {row['iou']:.3f} "
                      f"CD {row['chamfer_l1']:.4f} NC {row['normal_consistency']:.3f} "
                      f"{row['seconds']} s", flush=True)
    head = ["mesh", "cloud", "refine", "IoU", "Chamfer-L1", "normal cons.", "parts", "seconds"]
    print(table(head, [[r["mesh"], r["cloud"], r["refine_steps"], f"{r['iou']:.3f}",
                        f"{r['chamfer_l1']:.4f}", f"{r['normal_consistency']:.3f}",
                        f"{r['components']}/{r['components_ref']}", r["seconds"]] for r in rows]))
    write_result(args.out, {"run": str(args.run), "points": args.points, "resolution": RESOLUTION,
                            "held_out": [p.stem for p in held], "machine": machine(),
                            "command": "python benchmarks/clouds.py " + " ".join(sys.argv[1:]),
                            "rows": rows})


if __name__ == "__main__":
    main()
