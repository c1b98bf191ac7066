"""A lever of the local super-resolution model, side by side at equal steps (issue 23).

    python benchmarks/superres_levers.py BASE STEPS TAG [basis] [homogeneous] [dim] [hidden] [cond]
        [--loss mse|l1] [--lr 1e-3] [--precision fp32|bf16] [--inner-steps 2] [--layers 3]
        [--data cifar|mix] [--ema DECAY] [--scales 2,4]

BASE 0: no base, 1: bicubic base; basis quadratic | cubic (models/local_geometry.BASES);
homogeneous 0 | 1 (LocalDecoder.scaled); dim: the codes' length (16); hidden: the decoder's
width (128); cond 0 | 1: the decoder also reads the input's pixels (LocalDecoder.pixels).
--loss: the training loss of each view (l1: EDSR's and LIIF's); --lr: Adam's peak;
--precision bf16: the step under bf16 autocast, as the preset's `auto` on a bf16 CPU.
--inner-steps: the Gauss-Newton step and its chord steps, in training and evaluation (2).
--layers: the decoder MLP's depth (3: the window's linear layer and two hidden ones).
--data cifar | mix: mix trains each batch on 16 CIFAR-10 images and 16 32 px crops of the 9
training Kodak photos (the issue's recipe: photos and the CIFAR-10 array).
--ema DECAY: also score an exponential moving average of the weights (Polyak averaging), the
same training run, so the two columns differ only in the weights scored (ema_* keys).
--scales: the views' factors as `--observe-scales` takes them (2,4; 1-4,1-4: two views, each
at a factor drawn every step from [1, 4], the input round(32 / s) pixels a side, area-averaged;
the draws come from their own generator, so the batches are the same as with whole factors).

Trains LocalGON (16-vector codes, 3 x 128 GELU, 2 inner steps) on the shared CIFAR-10 array's
training split (the package's split, seed 0), batch 32, views box-downsampled 2x and 4x scored
at 32 x 32, Adam 1e-3 with a cosine to 0.1; the same seed and batches for every variant. At
steps 25, 100, 200, 300, 400 it prints and records the margin over bicubic (dB, the protocol
of benchmarks/superres.py) on 300 held-out CIFAR-10 images (4x, 2x) and on 24 crops of the
held-out Kodak photos (4x). Two invocations in parallel give the side-by-side curve;
results/superres_levers_TAG.json.
"""
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from inr_gon.fields import scale_spans
from inr_gon.models.local import LocalGON
from inr_gon.models.local_geometry import Geometry, area_downsample
from inr_gon.models.render import box_downsample
from inr_gon.plots import upscale_bicubic
from inr_gon.training.batches import split_indices

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import RESULTS, parser  # noqa: E402
from superres import scored  # noqa: E402
from superres_data import CIFAR, kodak_crops, kodak_split, read_image  # noqa: E402

EVAL_AT = (25, 100, 200, 300, 400, 600, 1000, 2000, 4000, 8000, 16000)


def upscaler(net: LocalGON, basis: str, steps: int = 2):
    geos: dict = {}

    def up(x: torch.Tensor, s: float, side: int | None = None) -> torch.Tensor:
        """x [B, h, w, C] -> [B, H, W, C]: s h x s w, or side x side."""
        b, h, w, c = x.shape
        out = (side, side) if side else (round(h * s), round(w * s))
        if (out, h, w) not in geos:
            geos[out, h, w] = Geometry.of(out, (h, w), basis=basis)
        return net(geos[out, h, w], x.reshape(b, h * w, c), steps).reshape(b, *out, c)
    return up


def margin(pred: np.ndarray, small: torch.Tensor, truth: np.ndarray, s: int) -> float:
    """dB over bicubic of the same input."""
    side = truth.shape[1]
    bic = upscale_bicubic(small.numpy(), side, side)
    return float(scored(pred, truth, s)["psnr"].mean() - scored(bic, truth, s)["psnr"].mean())


@torch.no_grad()
def evaluate(up, truth: torch.Tensor, kodak: np.ndarray) -> dict:
    out = {}
    for s in (4, 2):
        small = box_downsample(truth, s)
        out[f"cifar_{s}x"] = margin(up(small, s).clamp(0, 1).numpy(), small, truth.numpy(), s)
    small = box_downsample(torch.tensor(kodak), 4)
    pred = torch.cat([up(small[i:i + 8], 4) for i in range(0, len(kodak), 8)]).clamp(0, 1)
    out["kodak_4x"] = margin(pred.numpy(), small, kodak, 4)
    return out


def views_loss(up, x: torch.Tensor, loss: str = "mse", spans=((2, 2), (4, 4)),
               g: torch.Generator | None = None) -> torch.Tensor:
    """The training loss: x [B, 32, 32, C] area-averaged by each span's factor (drawn from g
    when a span), each upscaled back by up and scored against x (mean squared or absolute
    error), the mean over the views."""
    err = (lambda d: d.pow(2).mean()) if loss == "mse" else (lambda d: d.abs().mean())
    side, total = x.shape[1], 0
    for lo, hi in spans:
        s = lo + (hi - lo) * float(torch.rand((), generator=g)) if hi > lo else lo
        small = area_downsample(x, (round(side / s), round(side / s)))
        total = total + err(up(small, s, side) - x)
    return total / len(spans)


def photo_batches(g: torch.Generator, side: int = 32, batch: int = 32):
    """Random side x side crops of the training Kodak photos (benchmarks/superres.kodak_split),
    batch [B, side, side, C] per call: the photo-domain data a user of photos has."""
    photos = [torch.tensor(read_image(f)[..., :3].astype(np.float32) / 255.0)
              for f in kodak_split()[0]]

    def crop() -> torch.Tensor:
        p = photos[int(torch.randint(len(photos), (1,), generator=g))]
        y, x = (int(torch.randint(n - side + 1, (1,), generator=g)) for n in p.shape[:2])
        return p[y:y + side, x:x + side]
    return lambda: torch.stack([crop() for _ in range(batch)])


def train_and_log(net: torch.nn.Module, up, steps: int, tag: str, record=None,
                  data: str = "cifar", loss: str = "mse", lr: float = 1e-3,
                  bf16: bool = False, ema=None, spans=((2, 2), (4, 4))) -> list[dict]:
    """Adam lr, cosine to 0.1 lr, batch 32 of the training split (data "kodak": 32 px crops of
    the training photos instead; "mix": 16 of each), views 2x and 4x; the margins at EVAL_AT,
    passed to record(log) after each (a run stopped early keeps its curve). ema: (AveragedModel
    of net, its upscaler), updated after every step and scored beside net."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    imgs = torch.tensor(np.load(str(CIFAR)).astype(np.float32) / 255.0)
    train_idx, val_idx = split_indices(len(imgs), 0.1, 0)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    cosine = lambda k: 0.1 + 0.45 * (1 + math.cos(math.pi * min(k / steps, 1)))  # noqa: E731
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    g, g_scale = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    kodak, truth = kodak_crops(per_photo=8), imgs[val_idx[:300]]
    photos = photo_batches(g, batch=16 if data == "mix" else 32) if data != "cifar" else None
    cifar = lambda n: imgs[train_idx[torch.randint(len(train_idx), (n,), generator=g)]]  # noqa: E731
    draw = {"cifar": lambda: cifar(32), "kodak": photos,
            "mix": lambda: torch.cat([cifar(16), photos()])}[data]
    t0, log = time.time(), []
    for step in range(1, steps + 1):
        x = draw()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            value = views_loss(up, x, loss, spans, g_scale)
        opt.zero_grad()
        value.backward()
        opt.step()
        sched.step()
        if ema:
            ema[0].update_parameters(net)
        if step in EVAL_AT or step == steps:
            log.append({"step": step, **evaluate(up, truth, kodak), "seconds": round(time.time() - t0)})
            if ema:
                log[-1].update({f"ema_{k}": v for k, v in evaluate(ema[1], truth, kodak).items()})
            print(tag, log[-1], flush=True)
            if record:
                record(log)
    return log


def main() -> None:
    p = parser(__doc__)
    p.add_argument("pos", nargs="+", help="BASE STEPS TAG [basis] [homogeneous] [dim] [hidden] [cond]")
    p.add_argument("--loss", choices=("mse", "l1"), default="mse")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--inner-steps", type=int, default=2)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--ema", type=float, default=0.0)
    p.add_argument("--data", choices=("cifar", "mix"), default="cifar")
    p.add_argument("--scales", default="2,4")
    a = p.parse_args()
    pos = a.pos + [None] * (8 - len(a.pos))
    residual, steps, tag = pos[0] == "1", int(pos[1]), pos[2]
    basis, homogeneous = pos[3] or "quadratic", pos[4] == "1"
    dim, hidden = int(pos[5] or 16), int(pos[6] or 128)
    conditioned = pos[7] == "1"
    torch.manual_seed(0)
    net = LocalGON(dim, 3, hidden, a.layers, "gelu", residual=residual, basis=basis,
                   homogeneous=homogeneous, conditioned=conditioned)
    def record(log: list[dict]) -> None:
        (RESULTS / f"superres_levers_{tag}.json").write_text(json.dumps(
            {"command": " ".join(["python", *sys.argv]), "bicubic_base": residual,
             "basis": basis, "homogeneous": homogeneous, "code_dim": dim, "hidden": hidden,
             "conditioned": conditioned, "loss": a.loss, "lr": a.lr, "precision": a.precision,
             "inner_steps": a.inner_steps, "layers": a.layers, "ema": a.ema, "data": a.data,
             "scales": a.scales,
             "margin_over_bicubic_db": log}, indent=1))

    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(a.ema)) if a.ema else None
    train_and_log(net, upscaler(net, basis, a.inner_steps), steps, tag, record, loss=a.loss, lr=a.lr,
                  bf16=a.precision == "bf16", data=a.data, spans=scale_spans(a.scales),
                  ema=(ema, upscaler(ema.module, basis, a.inner_steps)) if ema else None)


if __name__ == "__main__":
    main()
