"""Peak memory and time of fitting and rendering a 4000 x 3000 photograph whole, on the CPU.

    python benchmarks/photo_memory.py [--steps 400] [--size 32] [--scale 2]

No large photograph ships with the project, so one is made: scikit-image's `coffee` (600 x 400)
upscaled bicubically to 4000 x 3000 and saved as a JPEG (smooth above 600 x 400, but a real
4000 x 3000 file to decode; memory and time do not depend on its content). A run is trained
with --crops on the full-size built-in photographs (astronaut, coffee, chelsea, rocket, camera)
at --size, with a 4 x 4 latent grid; then, each in a fresh process whose peak resident set
(ru_maxrss) is read:
- `inr-gon fit RUN photo.jpg --whole` (encode the tiles, render back at 4000 x 3000, PSNR);
- `inr-gon render RUN photo.jpg --scale 2` (encode, render 8000 x 6000, write the PNG);
- `python -c "import inr_gon.cli.app"`: the floor (Python, torch, numpy).
Aim: under 2 GB for the 2x render. JSON: results/photo_memory.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, parser, table, write_result  # noqa: E402
from render_memory import peak_rss_mib  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")
CLI = [sys.executable, "-m", "inr_gon"]


def make_photos(folder: Path) -> Path:
    """The training folder (built-in photos at full size) and the 4000 x 3000 test photo."""
    from skimage import data, transform  # scikit-image: the photographs and the upscale

    (folder / "train").mkdir()
    for name in PHOTOS:
        iio.imwrite(folder / "train" / f"{name}.png", getattr(data, name)())
    big = transform.resize(data.coffee(), (3000, 4000), order=3, anti_aliasing=False)
    path = folder / "photo4000x3000.jpg"
    iio.imwrite(path, (np.clip(big, 0, 1) * 255 + 0.5).astype(np.uint8), quality=95)
    return path


def main() -> None:
    ap = parser(__doc__, steps=400, size=32)
    ap.add_argument("--scale", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = make_photos(tmp)
        run = tmp / "run"
        train = [*CLI, "train", str(tmp / "train"), "--crops", "--size", str(args.size),
                 "--steps", str(args.steps), "--batch-size", "16", "--hidden", "64",
                 "--layers", "3", "--latent-grid", "4", "--lr", "1e-3", "--val-fraction", "0.2",
                 "--out", str(run), "--quiet", "--device", "cpu"]
        train_mib, train_s = peak_rss_mib(train)
        floor_mib, _ = peak_rss_mib([sys.executable, "-c", "import inr_gon.cli.app"])
        fit_json = tmp / "fit.json"
        fit = [*CLI, "fit", str(run), str(photo), "--whole", "--json", "--device", "cpu"]
        fit_mib, fit_s = peak_rss_mib(["sh", "-c", " ".join(fit) + f" > {fit_json}"])
        psnr = json.loads(fit_json.read_text())["items"][0]["psnr_0"]
        render = [*CLI, "render", str(run), str(photo), "--scale", str(args.scale), "--out",
                  str(tmp / "renders"), "--quiet", "--device", "cpu"]
        render_mib, render_s = peak_rss_mib(render)
        out = iio.imread(tmp / "renders" / "photo4000x3000.png")
    rows = [
        ["import inr_gon.cli.app (floor)", "", round(floor_mib), ""],
        [f"train --crops --size {args.size}, {args.steps} steps", "", round(train_mib),
         round(train_s, 1)],
        ["fit --whole (4000x3000 back at 4000x3000)", f"PSNR {psnr:.2f} dB", round(fit_mib),
         round(fit_s, 1)],
        [f"render --scale {args.scale:g}", f"{out.shape[1]}x{out.shape[0]} PNG", round(render_mib),
         round(render_s, 1)],
    ]
    print(table(["command", "result", "peak RSS MiB", "seconds"], rows))
    path = write_result("photo_memory", {
        "machine": machine(), "photo": "skimage coffee upscaled bicubically to 4000x3000 (JPEG)",
        "train": " ".join(train[2:]), "steps": args.steps, "tile": f"{args.size}x{args.size}",
        "floor_mib": floor_mib, "train_mib": train_mib, "train_s": train_s,
        "fit_mib": fit_mib, "fit_s": fit_s, "fit_psnr": psnr,
        "render_scale": args.scale, "render_size": f"{out.shape[1]}x{out.shape[0]}",
        "render_mib": render_mib, "render_s": render_s, "target_mib": 2048,
        "within_target": render_mib <= 2048 and fit_mib <= 2048})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
