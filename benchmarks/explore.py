"""The targets of `inr-gon explore` (issue 25), measured against the real command:

- the page answers within 2 s of the command starting (the gallery is encoded after that);
- a 512x512 zoom view renders in < 0.5 s (the server's own X-Render-Seconds, and wall time);
- 20 concurrent requests are all answered, the server's peak memory noted beside --max-memory.

Usage: python benchmarks/explore.py RUN [--backend onnx] [--decoder FILE] [--out OUT.json]
(RUN/decoder.onnx from `inr-gon export RUN` for the onnx backend; --decoder another exported
file, e.g. RUN/decoder_int8.onnx from `inr-gon export RUN --int8`).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmarks, also under PYTHONSAFEPATH
from common import parser  # noqa: E402


def get(url: str) -> tuple[int, float, float]:
    """(status, wall seconds, the server's X-Render-Seconds or 0)."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            r.read()
            return r.status, time.perf_counter() - start, float(r.headers.get("X-Render-Seconds", 0))
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - start, 0.0


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = parser(__doc__, out=None)
    ap.add_argument("run")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--max-memory", type=int, default=512)
    ap.add_argument("--decoder", default=None, help="with --backend onnx: this exported file")
    args = ap.parse_args()
    decoder = ["--decoder", args.decoder] if args.decoder else []
    load = os.getloadavg()[0]  # before the server starts: how idle the machine was
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inr_gon", "explore", args.run, "--port", "0",
                             "--backend", args.backend, "--max-memory", str(args.max_memory), "--quiet",
                             *decoder],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        address = proc.stdout.readline().strip()
        status, _, _ = get(address)
        page_s = time.perf_counter() - start
        base, token = address.split("?token=")
        api = lambda path, **q: f"{base}api/{path}?" + "&".join(  # noqa: E731
            f"{k}={v}" for k, v in {**q, "token": token}.items())
        status_info, _, _ = get(api("info"))
        usable_s = time.perf_counter() - start
        while json.loads(urllib.request.urlopen(api("info"), timeout=60).read())["loading"]:
            time.sleep(0.05)
        gallery_s = time.perf_counter() - start
        coarse = [get(api("view.png", item=0, x0=-0.4, x1=0.1, y0=-0.3, y1=0.2, w=128, h=128))
                  for _ in range(6)][1:]
        views = [get(api("view.png", item=0, x0=-0.4, x1=0.1, y0=-0.3, y1=0.2, w=512, h=512))
                 for _ in range(6)][1:]  # the first call warms the session up
        with ThreadPoolExecutor(20) as pool:
            t0 = time.perf_counter()
            burst = list(pool.map(lambda i: get(api("view.png", item=i % 4, w=256, h=256,
                                                     x0=-1 + i * 0.01)), range(20)))
            burst_s = time.perf_counter() - t0
        report = {
            "run": args.run, "backend": args.backend, "decoder": args.decoder,
            "max_memory_mib": args.max_memory,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average "
                       f"{load:.2f} at the start",
            "page_status": status, "page_seconds_from_start": round(page_s, 3),
            "info_status": status_info, "usable_seconds_from_start": round(usable_s, 3),
            "gallery_ready_seconds_from_start": round(gallery_s, 3),
            "view_128_coarse_render_seconds_median": round(statistics.median(v[2] for v in coarse), 4),
            "view_512_render_seconds_median": round(statistics.median(v[2] for v in views), 4),
            "view_512_wall_seconds_median": round(statistics.median(v[1] for v in views), 4),
            "concurrent_20_statuses": sorted({b[0] for b in burst}),
            "concurrent_20_answered": sum(b[0] == 200 for b in burst),
            "concurrent_20_wall_seconds": round(burst_s, 3),
            "server_peak_rss_mib": round(peak_rss_mib(proc.pid), 1),
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
