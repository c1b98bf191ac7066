"""A latent grid applied by its corners or as dense weights: training step time, side by side.

    python benchmarks/corners.py --threads 1 --repeats 15

Each row is a default as `inr-gon train` builds it (cli.options.starting_config) on real data:
the mesh folders' default (every layer modulated by a 6^3 grid of 16-vectors, the CG
Gauss-Newton step) on shared/data/meshes, and the image default (a 4 x 4 grid of 64, the dense
Gauss-Newton step) on the CIFAR-10 array; --grids adds the mesh default on other grid sides
(at the latent limit). Each is stepped by the package's own Stepper twice, once with
`siren.CORNERS_ABOVE` set so the grid is applied by its 2^d corners (`models/cells.Corners`),
once so it is applied as dense [N, G^d] weights; the two alternate step by step (after two
warm-up rounds), so load drifts hit both alike. Prints the median seconds a step and the ratio;
writes results/corners.json. The two are the same function (tests/test_cells.py), so a ratio is
all that differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from inr_gon.cli.options import starting_config
from inr_gon.config import Config
from inr_gon.device import configure
from inr_gon.models import siren

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, parser, table, timed, write_result  # noqa: E402
from quality import data_path  # noqa: E402
from step_levers import stepper  # noqa: E402

MESHES = Path(__file__).resolve().parents[2] / "shared" / "data" / "meshes"
ALWAYS, NEVER = 0, 10**9  # CORNERS_ABOVE values: corners for every grid, for none


def configs(args) -> dict[str, Config]:
    common = {"device": "cpu", "threads": args.threads, "preview_every": 0, "checkpoint_every": 0}
    mesh = starting_config(None, None, {"data": str(args.meshes), **common}, quiet=True)
    out = {"mesh default (6^3 x 16, CG)": mesh}
    for g in args.grids:
        out[f"mesh, {g}^3 x {4096 // g**3}"] = mesh.replace(latent_grid=g, latent_dim=4096 // g**3).validate()
    image = {"data": str(data_path("cifar")), "height": 32, "width": 32, **common}
    out["image default (4x4 x 64, dense GN)"] = starting_config(None, None, image, quiet=True)
    return out


def main() -> None:
    ap = parser(__doc__, repeats=15, threads=1)
    ap.add_argument("--meshes", type=Path, default=MESHES)
    ap.add_argument("--grids", type=lambda s: [int(x) for x in s.split(",") if x], default=[8],
                    help="more mesh grid sides, each at 4,096 latent values")
    ap.add_argument("--name", default="corners")
    args = ap.parse_args()
    cfgs = configs(args)
    configure(next(iter(cfgs.values())), torch.device("cpu"))
    rows, record = [], {}
    for name, cfg in cfgs.items():
        step, task, _ = stepper(cfg)
        times: dict[int, list[float]] = {ALWAYS: [], NEVER: []}
        for r in range(args.repeats + 2):
            coords, values = task.batch(r)
            for mode in (ALWAYS, NEVER):
                siren.CORNERS_ABOVE = mode
                seconds = timed(lambda: step(coords, values, None, 1e-4))  # noqa: B023
                if r >= 2:
                    times[mode].append(seconds)
        corners, full = median(times[ALWAYS]), median(times[NEVER])
        record[name] = {"corners_s": round(corners, 4), "dense_s": round(full, 4),
                        "speedup": round(full / corners, 3),
                        "seconds": {"corners": times[ALWAYS], "dense": times[NEVER]}}
        rows.append([name, f"{full:.3f}", f"{corners:.3f}", f"{full / corners:.2f}x"])
        print(*rows[-1], flush=True)
    print(table(["default", "dense s/step", "corners s/step", "corners' speed-up"], rows))
    write_result(args.name, {"command": " ".join(["python", *sys.argv]), "machine": machine(),
                             "repeats": args.repeats, "rows": record})


if __name__ == "__main__":
    main()
