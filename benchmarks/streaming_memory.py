"""Training on a 100k-image folder: streamed (decoded per batch) against loaded into RAM.

    python benchmarks/streaming_memory.py [--count 100000] [--steps 20] [--folder DIR]

Writes (once, then reuses) a folder of `count` 32 x 32 RGB PNGs (the built-in shapes, repeated
under distinct names), then runs `inr-gon train` on it twice in fresh processes, alternating:
with `--data-memory 4096` (100k x 32 x 32 x 3 float32 = 1.2 GB fits, so it is loaded) and with
the default `--data-memory` of 1024 MiB (it streams: DataLoader workers decode each batch).
Reports each run's peak resident memory (the largest process: trainer or a worker) and time.
JSON: results/streaming_memory.json.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from inr_gon.datasets import IMAGE_EXTS, find_files, load_images

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, parser, table, write_result  # noqa: E402
from render_memory import peak_rss_mib  # noqa: E402


def make_folder(folder: Path, count: int) -> None:
    if folder.exists() and len(find_files(folder, IMAGE_EXTS)) == count:
        return
    distinct = load_images("builtin:shapes:5000", 32).images
    pixels = (distinct * 255 + 0.5).astype(np.uint8)
    for i in range(count):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        iio.imwrite(sub / f"{i:06d}.png", pixels[i % len(pixels)])


def main() -> None:
    ap = parser(__doc__, steps=20, repeats=2)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "inr_gon_images_100k"))
    args = ap.parse_args()
    folder = Path(args.folder)
    make_folder(folder, args.count)
    cases = {"in RAM (--data-memory 4096)": ["--data-memory", "4096"],
             "streamed (default --data-memory 1024, 2 workers)": []}
    res: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for i, (name, flags) in enumerate(cases.items()):
                cmd = [sys.executable, "-m", "inr_gon", "train", str(folder), "--size", "32",
                       "--steps", str(args.steps), "--batch-size", "32", "--hidden", "64", "--layers",
                       "3", "--preview-every", "0", "--checkpoint-every", "0", "--device", "cpu",
                       "--quiet", "--out", str(Path(tmp) / f"run{r}_{i}"), *flags]
                res[name].append(peak_rss_mib(cmd))
    rows, out = [], {}
    for name, v in res.items():
        rss, secs = median([m for m, _ in v]), median([s for _, s in v])
        rows.append([name, f"{rss:.0f}", f"{secs:.1f}"])
        out[name] = {"peak_rss_mib": [m for m, _ in v], "seconds": [s for _, s in v],
                     "median_peak_rss_mib": rss, "median_seconds": secs}
    print(f"`inr-gon train` on {args.count} PNGs (32 x 32 RGB), {args.steps} steps, SIREN 3 x 64, "
          f"CPU; medians of {args.repeats} alternating runs (time includes start-up and evaluation)")
    print(table(["data", "peak RSS MiB", "seconds"], rows))
    path = write_result("streaming_memory", {"machine": machine(), "count": args.count,
                                             "steps": args.steps, "results": out})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
