"""Time and memory of super-resolution with a local run (issue 23's speed targets).

    python benchmarks/superres_speed.py RUN [--repeats 3] [--name superres_speed]

- fit + 4x render of one 256 x 256 input (the centre of held-out Kodak photo kodim14), in this
  process, one pass (the run's own inner steps), timed from the pixels to the 1024 x 1024
  output, with each backend side by side: torch, and onnxruntime for every decoder call
  (`render --backend onnx`; RUN/decoder.onnx, written by `inr-gon export RUN` when missing);
  the first call builds the step's factorisation, later calls reuse it, so both are
  reported (median of the repeats for the warm figure);
- `inr-gon render RUN kodim14.png --scale 4` on the whole 768 x 512 photo in a fresh process,
  per backend: its peak resident set (ru_maxrss) and wall time, PNG written.
Target: < 10 s for the first, < 2 GB RSS for the second, on an idle 2-core machine. JSON:
results/NAME.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from imageio.v3 import imread

from inr_gon.export.local import onnx_local_decoder
from inr_gon.inference.superres import upscale_photo
from inr_gon.run import load_run

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import machine, median, table, write_result  # noqa: E402
from render_memory import peak_rss_mib  # noqa: E402
from superres_data import DATA  # noqa: E402

PHOTO = DATA / "photos" / "kodim14.png"  # held out (benchmarks/superres.py, kodak_split)


BACKENDS = ("torch", "onnx")


def timed_upscale(run, photo: np.ndarray, scale: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Per backend, (first call's seconds, median of the later calls' seconds): torch's calls
    first, then onnxruntime's (a user's process runs one backend; calls interleaved in one
    process measured torch's 5 to 8 s slower after onnxruntime's)."""
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    outs = {}
    for b in BACKENDS:
        decode = onnx_local_decoder(run, quiet=True) if b == "onnx" else None
        run.model._origins.clear()  # each first call pays for the factorisation
        for _ in range(repeats + 1):
            t = time.perf_counter()
            outs[b] = upscale_photo(run, photo, (scale * photo.shape[0], scale * photo.shape[1]),
                                    decode=decode)
            times[b].append(time.perf_counter() - t)
    assert outs["torch"].shape[:2] == (scale * photo.shape[0], scale * photo.shape[1])
    assert np.abs(outs["torch"] - outs["onnx"]).max() < 1e-3, "the backends disagree"
    return {b: (t[0], median(t[1:])) for b, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a local run (--preset superres)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--name", default="superres_speed", help="results/NAME.json")
    args = p.parse_args(argv)
    if not (Path(args.run) / "decoder.onnx").is_file():
        subprocess.run([str(Path(sys.executable).with_name("inr-gon")), "export", args.run,
                        "--quiet"], check=True)
    run = load_run(args.run)
    full = imread(PHOTO)[..., :3].astype(np.float32) / 255.0
    y, x = (full.shape[0] - 256) // 2, (full.shape[1] - 256) // 2
    fits = timed_upscale(run, full[y:y + 256, x:x + 256], 4, args.repeats)
    photos = {}
    for b in BACKENDS:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [str(Path(sys.executable).with_name("inr-gon")), "render", args.run, str(PHOTO),
                   "--scale", "4", "--out", str(Path(tmp) / "renders"), "--device", "cpu",
                   "--backend", b, "--quiet"]
            photos[b] = peak_rss_mib(cmd)
    record = {"command": " ".join(["python", *sys.argv]), "machine": machine(),
              "run": args.run, "inner_steps": run.model.steps,
              **{f"{b}_fit_render_256_to_1024_first_s": round(fits[b][0], 2) for b in BACKENDS},
              **{f"{b}_fit_render_256_to_1024_warm_s": round(fits[b][1], 2) for b in BACKENDS},
              **{f"{b}_photo_768x512_scale4_rss_mib": round(photos[b][0], 1) for b in BACKENDS},
              **{f"{b}_photo_768x512_scale4_s": round(photos[b][1], 1) for b in BACKENDS},
              "targets": {"fit_render_s": 10, "rss_mib": 2048}}
    print(table(["what", *BACKENDS, "target"], [
        ["256 -> 1024, first call (s)", *(f"{fits[b][0]:.2f}" for b in BACKENDS), "< 10"],
        ["256 -> 1024, warm (s, median)", *(f"{fits[b][1]:.2f}" for b in BACKENDS), "< 10"],
        ["768x512 photo x4, peak RSS (MiB)", *(f"{photos[b][0]:.0f}" for b in BACKENDS), "< 2048"],
        ["768x512 photo x4, wall incl. start (s)", *(f"{photos[b][1]:.1f}" for b in BACKENDS), ""]]))
    write_result(args.name, record)


if __name__ == "__main__":
    main()
