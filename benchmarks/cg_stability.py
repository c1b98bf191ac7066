"""Is training through the Gauss-Newton-by-CG step stable? A bare loop on the training meshes of
benchmarks/shapes.py (the same seed, batches and points for every variant), logging every 25
steps the clamped L1, the gradient norm, the learned damping and the largest latent value.

    OMP_NUM_THREADS=1 python benchmarks/cg_stability.py CONFIG STEPS CLIP [LR] [freeze]
    e.g. python benchmarks/cg_stability.py grid-cg-lr5 1500 0 5e-4

CONFIG: a configuration of benchmarks/shapes.py; CLIP: gradient-norm clipping (0: none);
LR: constant Adam rate (default 1e-3); freeze: keep the damping at its start. The meshes are
the training folder `shapes.py run` links (run it once first). The logs that docs/shapes.md
and models/gauss_newton.py quote are in benchmarks/results/shapes/cg_stability/.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks
from shapes import CONFIGS  # noqa: E402

from inr_gon.config import Config  # noqa: E402
from inr_gon.datasets import Sampling, load_shapes  # noqa: E402
from inr_gon.models.gon import GON  # noqa: E402

TRAIN = Path(tempfile.gettempdir()) / "inr-gon-shapes-bench-meshes" / "train"


def main() -> None:
    name, steps, clip = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    lr = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-3
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = Config.of(data=str(TRAIN), modality="sdf", channels=1, **CONFIGS[name])
    shapes = load_shapes(cfg.dataset.data, Sampling.from_config(cfg), quiet=True)
    points = torch.as_tensor(shapes.points)
    sdf = torch.as_tensor(shapes.sdf).reshape(len(shapes.names), -1, 1)
    model = GON(cfg)
    if len(sys.argv) > 5 and sys.argv[5] == "freeze":
        model.origin.rho.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr)
    g, t0 = torch.Generator().manual_seed(0), time.time()
    for step in range(steps):
        b = torch.randint(points.shape[0], (8,), generator=g)
        pick = torch.randint(points.shape[1], (8, 1024), generator=g)
        c = torch.gather(points[b], 1, pick[..., None].expand(-1, -1, 3))
        v = torch.gather(sdf[b], 1, pick[..., None])
        loss = model(c, v)["loss"]
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():  # before the update, as the loss
            zmax = model.encode(c, v).abs().max().item() if step % 25 == 0 else 0.0
            damp = float(torch.nn.functional.softplus(model.origin.rho)) \
                if hasattr(model.origin, "rho") else 0.0
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip > 0 else 1e9)
        opt.step()
        if step % 25 == 0:
            print(step, round(loss.item(), 4), "gradnorm", round(norm.item(), 3), "damp",
                  round(damp, 4), "zmax", round(zmax, 2), round(time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
