"""Which parts a reconstruction has beyond its main body, and whose fault they are.

    python benchmarks/shape_parts.py RUN --names scorpion_low_resolution,cat-low-resolution

For each named training shape of an SDF run (a `benchmarks/shapes.py` run folder or any
`inr-gon train MESHES/` run): the one-step latent (and, with --refine-steps K, the latent
refined K steps) meshed at --resolution both coarse to fine (what `eval` and `mesh` do) and
--dense (every grid point), and the true SDF meshed the same way. Each mesh's connected parts
are listed smallest first, beside the main body: faces, area and width (the bounding box's
largest side, normalised frame). A part that appears in both the coarse and the dense mesh is
the learned SDF's, not the mesher's; one the truth has too is the resolution's. Prints a
table and writes results/shape_parts.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from inr_gon.datasets import Sampling, load_shapes
from inr_gon.inference.shape_refine import SDF_REFINE_LR, shape_latents
from inr_gon.run import load_run
from inr_gon.shapes.mesh import extract_mesh, network_sdf, sdf_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, parser, table, write_result  # noqa: E402


def parts(mesh) -> list[dict]:
    """The mesh's connected parts but the largest, smallest first: faces, area, width."""
    if mesh is None:
        return []
    found = sorted(mesh.split(only_watertight=False), key=lambda m: len(m.faces))[:-1]
    return [{"faces": len(m.faces), "area": round(float(m.area), 6),
             "width": round(float(np.max(m.extents)), 4)} for m in found]


def described(found: list[dict]) -> str:
    return "one body" if not found else "; ".join(
        f"{p['faces']} faces, {p['width']:.3g} wide" for p in found)


def main() -> None:
    ap = parser(__doc__, threads=1)
    ap.add_argument("run", type=Path)
    ap.add_argument("--names", required=True, help="training shapes, comma-separated")
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--refine-steps", type=int, default=0)
    ap.add_argument("--name", default="shape_parts")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = load_run(args.run, "cpu")
    shapes = load_shapes(run.cfg.dataset.data, Sampling.from_config(run.cfg), quiet=True)
    names = [n for n in args.names.split(",") if n]
    if unknown := sorted(set(names) - set(shapes.names)):
        raise SystemExit(f"error: {unknown} are not shapes of {args.run}")
    pick = [shapes.names.index(n) for n in names]
    pts, sdf = torch.from_numpy(shapes.points[pick]), torch.from_numpy(shapes.sdf[pick])[..., None]
    _, z = shape_latents(run.model, pts, sdf, run.cfg.sdf.sdf_clamp, args.refine_steps,
                         SDF_REFINE_LR, run.device)
    record, rows = {}, []
    for k, (i, name) in enumerate(zip(pick, names, strict=True)):
        learned = network_sdf(run.decoder, z[k])
        truth = lambda p, i=i: shapes.true_sdf(i, p).astype(np.float32)  # noqa: E731
        found = {"coarse": parts(extract_mesh(sdf_volume(learned, args.resolution))),
                 "dense": parts(extract_mesh(sdf_volume(learned, args.resolution, dense=True))),
                 "truth": parts(extract_mesh(sdf_volume(truth, args.resolution)))}
        record[name] = found
        rows.append([name, *(described(found[key]) for key in ("coarse", "dense", "truth"))])
        print(*rows[-1], sep=" | ", flush=True)
    print(table(["shape", "learned, coarse to fine", "learned, dense", "true SDF"], rows))
    write_result(args.name, {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                             "run": str(args.run), "resolution": args.resolution,
                             "refine_steps": args.refine_steps, "shapes": record})


if __name__ == "__main__":
    main()
