"""A convolutional super-resolution network beside the local model, at equal steps (issue 23).

    OMP_NUM_THREADS=1 python benchmarks/superres_cnn.py STEPS [WIDTH] [cifar|kodak]
    python benchmarks/superres_cnn.py steptime [REPEATS] [NAME]   # idle: seconds per training step
    python benchmarks/superres_cnn.py steptime-scales [REPEATS] [NAME]   # idle: per view recipe

The baseline a learned encoder sets on the same data and budget: ESPCN (Shi et al. 2016) on
the bicubic residual, conv 5x5 -> GELU -> conv 3x3 -> GELU -> conv 3x3 to C s^2 channels ->
pixel shuffle, one head per scale, added to bicubic (Keys, as the local model's base). Trained
and scored exactly as benchmarks/superres_levers.py trains the local model (CIFAR-10 training
split, batch 32, views 2x and 4x, Adam 1e-3 with the cosine; margins over bicubic on 300
held-out CIFAR-10 images and 24 held-out Kodak crops): results/superres_levers_cnnWIDTH.json;
`kodak`: trained on 32 px crops of the 9 training Kodak photos instead (..._cnnWIDTH_kodak.json).
`steptime` times one training step of each (the local model as `--preset superres` trained
before 3 inner steps, the same under `--precision bf16`, the same without --local-pixels, ESPCN
width 64, and under bf16: the cubic window basis, 3 inner steps, the same with the window's
mixing as the einsums it was before, and 3 with the wide and the pyramid windows), interleaved,
median of REPEATS, with the threads torch is given: results/NAME.json (default
superres_steptime). `steptime-scales`: the preset's model, a step per `--scales` recipe of
superres_levers.py (2,4 as the preset; 1-4,1-4; 2-4,2-4; 4; 1-4), the mean of REPEATS:
results/NAME.json (default superres_steptime_scales).
"""
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from inr_gon.fields import scale_spans
from inr_gon.models.local import LocalGON
from inr_gon.models.local_geometry import Geometry

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import RESULTS, machine, median  # noqa: E402
from superres_levers import train_and_log, upscaler, views_loss  # noqa: E402


class ESPCN(nn.Module):
    def __init__(self, width: int = 64, scales: tuple[int, ...] = (2, 3, 4), c: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, width, 5, padding=2, padding_mode="reflect"),
                                  nn.GELU(),
                                  nn.Conv2d(width, width // 2, 3, padding=1, padding_mode="reflect"),
                                  nn.GELU())
        self.heads = nn.ModuleDict({str(s): nn.Conv2d(width // 2, c * s * s, 3, padding=1,
                                                      padding_mode="reflect") for s in scales})

    def forward(self, x: Tensor, s: int, side: int | None = None) -> Tensor:
        """x [B, h, w, C] -> [B, s h, s w, C]: bicubic plus the learned residual (whole
        factors only: a head per factor; side, as the local upscaler's, is s h)."""
        b, h, w, c = x.shape
        s = int(s)
        geo = Geometry.of((h * s, w * s), (h, w))
        base = geo.interp(x.reshape(b, h * w, c)).reshape(b, h * s, w * s, c)
        res = nn.functional.pixel_shuffle(self.heads[str(s)](self.body(x.permute(0, 3, 1, 2))), s)
        return base + res.permute(0, 2, 3, 1)


def einsum_mix(geo: Geometry, z: Tensor) -> Tensor:
    """Geometry.mix as it was before the batched matrix products (the same sums, as einsums)."""
    (h, w), d = geo.in_hw, z.shape[-1]
    along_x = torch.einsum("aXw,bhwd->bahXd", geo.fx, z.reshape(-1, h, w, d))
    mixed = torch.einsum("fYh,bfhXd->bYXfd", geo.fy[geo.pair_y], along_x[:, geo.pair_x])
    return mixed.flatten(1, 2).flatten(-2)


def with_einsum_mix(up):
    """up, run with einsum_mix in place of Geometry.mix."""
    def run(x: Tensor, s: int, side: int | None = None) -> Tensor:
        mix, Geometry.mix = Geometry.mix, einsum_mix
        try:
            return up(x, s, side)
        finally:
            Geometry.mix = mix
    return run


def step_seconds(up, params, x: Tensor, bf16: bool = False, spans=((2, 2), (4, 4)),
                 g: torch.Generator | None = None) -> float:
    """One Adam step on the batch x [B, 32, 32, C], views 2x and 4x (or spans, drawn from g),
    as train_and_log's; bf16: the forward under bfloat16 autocast, as `--precision bf16`
    trains."""
    opt = torch.optim.Adam(params, lr=1e-3)
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = views_loss(up, x, spans=spans, g=g)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def steptime(repeats: int, out: str = "superres_steptime") -> None:
    torch.manual_seed(0)
    local = LocalGON(16, 3, 128, 3, "gelu", residual=True, conditioned=True)
    plain, cnn = LocalGON(16, 3, 128, 3, "gelu", residual=True), ESPCN(64)
    cubic = LocalGON(16, 3, 128, 3, "gelu", residual=True, conditioned=True, basis="cubic")
    wide = LocalGON(16, 3, 128, 3, "gelu", residual=True, conditioned=True, basis="wide")
    pyramid = LocalGON(16, 3, 128, 3, "gelu", residual=True, conditioned=True, basis="pyramid")
    models = {"local (--preset superres)": (upscaler(local, "quadratic"), local.parameters, False),
              "local, --precision bf16": (upscaler(local, "quadratic"), local.parameters, True),
              "local without the pixels": (upscaler(plain, "quadratic"), plain.parameters, False),
              "ESPCN width 64": (cnn.forward, cnn.parameters, False),
              "local, bf16, cubic basis": (upscaler(cubic, "cubic"), cubic.parameters, True),
              "local, bf16, 3 inner steps": (upscaler(local, "quadratic", 3), local.parameters, True),
              "the same, einsum mixing (before)": (with_einsum_mix(upscaler(local, "quadratic", 3)),
                                                   local.parameters, True),
              "local, bf16, 3 inner steps, wide window": (upscaler(wide, "wide", 3), wide.parameters,
                                                          True),
              "local, bf16, 3 inner steps, pyramid window": (upscaler(pyramid, "pyramid", 3),
                                                             pyramid.parameters, True)}
    x, times = torch.rand(32, 32, 32, 3), {k: [] for k in models}
    for _ in range(repeats + 1):  # the first round warms up
        for name, (up, params, bf16) in models.items():
            times[name].append(step_seconds(up, list(params()), x, bf16))
    med = {k: median(v[1:]) for k, v in times.items()}
    ratio = med["local (--preset superres)"] / med["ESPCN width 64"]
    bf16 = med["local (--preset superres)"] / med["local, --precision bf16"]
    for k, v in med.items():
        print(f"{k:44s} {v:.4f} s a step")
    print(f"local / ESPCN: {ratio:.1f}x; local fp32 / bf16: {bf16:.2f}x")
    (RESULTS / f"{out}.json").write_text(json.dumps(
        {"command": " ".join(["python", *sys.argv]), "machine": machine(),
         "threads": torch.get_num_threads(), "batch": 32, "views": [2, 4],
         "seconds_median": med, "seconds_all": times, "ratio": ratio,
         "fp32_over_bf16": bf16}, indent=1))


def steptime_scales(repeats: int, out: str = "superres_steptime_scales") -> None:
    """The preset's model (bf16, 3 inner steps, the wide window), a step per training-view
    recipe (`superres_levers.py --scales`), interleaved; a span's factors drawn from one
    generator per recipe, so every recipe meets the same factors in every run."""
    torch.manual_seed(0)
    wide = LocalGON(16, 3, 128, 3, "gelu", residual=True, conditioned=True, basis="wide")
    up = upscaler(wide, "wide", 3)
    recipes = ("2,4", "1-4,1-4", "2-4,2-4", "4", "1-4")
    gens = {r: torch.Generator().manual_seed(1) for r in recipes}
    x, times = torch.rand(32, 32, 32, 3), {r: [] for r in recipes}
    for _ in range(repeats + 1):  # the first round warms up
        for r in recipes:
            times[r].append(step_seconds(up, list(wide.parameters()), x, True, scale_spans(r),
                                         gens[r]))
    mean = {r: sum(v[1:]) / repeats for r, v in times.items()}  # a span's steps vary: the mean
    for r, v in mean.items():
        print(f"--scales {r:10s} {v:.4f} s a step (mean), {v / mean['2,4']:.2f}x")
    (RESULTS / f"{out}.json").write_text(json.dumps(
        {"command": " ".join(["python", *sys.argv]), "machine": machine(),
         "threads": torch.get_num_threads(), "batch": 32, "seconds_mean": mean,
         "seconds_all": times}, indent=1))


def main() -> None:
    if sys.argv[1] == "steptime-scales":
        return steptime_scales(int((sys.argv[2:3] or [10])[0]), *sys.argv[3:4])
    if sys.argv[1] == "steptime":
        return steptime(int((sys.argv[2:3] or [10])[0]), *sys.argv[3:4])
    steps, width = int(sys.argv[1]), int((sys.argv[2:3] or [64])[0])
    data = (sys.argv[3:4] or ["cifar"])[0]
    tag = f"cnn{width}" + ("" if data == "cifar" else f"_{data}")
    torch.manual_seed(0)
    net = ESPCN(width)
    def record(log: list[dict]) -> None:
        (RESULTS / f"superres_levers_{tag}.json").write_text(json.dumps(
            {"command": " ".join(["python", *sys.argv]), "model": f"ESPCN width {width}",
             "trained_on": data, "parameters": sum(p.numel() for p in net.parameters()),
             "margin_over_bicubic_db": log}, indent=1))

    train_and_log(net, net.forward, steps, tag, record, data)


if __name__ == "__main__":
    main()
