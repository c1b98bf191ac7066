"""gpu_check.py's results as the issue's targets and as a Markdown report."""

from __future__ import annotations

import math

RENDER_RATE, RENDER_PEAK, STEP_RATIO = 1e9, 0.5, 5.0  # issue 16, on an H100 or H200


def targets(r: dict) -> list[dict]:
    """The issue's targets against this run's figures; met is None in a dry run (tiny sizes
    on a CPU say nothing about a GPU)."""
    half = [x for x in r["render"] if x["precision"] == "fp16" and "coords_per_s" in x]
    best = max(half, key=lambda x: x["coords_per_s"], default=None)
    best_frac = max(half, key=lambda x: x["fraction_of_peak"], default=None)
    ours = {k: v for k, v in r["train_step"].items() if not k.startswith("paper")}
    fastest = max(ours, key=lambda k: ours[k]["ratio_to_paper"])
    fp32 = next(c for c in r["checks"] if c["name"].startswith("gradients fp32 "))
    rows = [
        (f"render >= {RENDER_RATE:.0e} coordinates/s in fp16", best and best["coords_per_s"],
         RENDER_RATE, best and f"{best['backend']} fp16"),
        (f"render >= {RENDER_PEAK:.0%} of the fp16 matmul peak", best_frac and best_frac["fraction_of_peak"],
         RENDER_PEAK, best_frac and f"{best_frac['backend']} fp16"),
        (f"training step >= {STEP_RATIO:.0f}x the paper's step", ours[fastest]["ratio_to_paper"],
         STEP_RATIO, fastest),
        ("training step fp32 vs the paper's step", ours["inr-gon fp32"]["ratio_to_paper"], STEP_RATIO,
         "inr-gon fp32 (eager)"),
        ("identical fp32 gradients (CPU vs device)", fp32["measured"], fp32["tolerance"], "relative"),
    ]
    out = []
    for name, value, goal, where in rows:
        at_most = name.startswith("identical")
        met = None if r["dry_run"] or value is None else (value <= goal if at_most else value >= goal)
        out.append({"target": name, "measured": value, "goal": goal, "where": where, "met": met})
    return out


def check(name: str, measured: float, tolerance: float, detail: str = "") -> dict:
    """One pass/fail record; a measure that is NaN or inf (a path that failed) fails, stored
    as null so the JSON stays strict."""
    ok = math.isfinite(measured)
    return {"name": name, "measured": measured if ok else None, "tolerance": tolerance,
            "passed": ok and measured <= tolerance, "detail": detail}


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])


def num(x, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def mib(b) -> str:
    return "-" if b is None else f"{b / 2**20:.0f} MiB"


def yes(met) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def training_cells(v: dict) -> list[str]:
    note = v.get("skipped") or v.get("error")
    if note:
        return ["-", "-", "-", note[:100].replace("\n", " ")]
    return [num(v["seconds"], ".1f"), num(v["losses"][-1][1] if v["losses"] else None, ".4g"),
            f"{num(v.get('val_metric'), '.4g')} ({v.get('metric', '-')})", mib(v.get("peak_memory_bytes"))]


def markdown(r: dict) -> str:
    where = f"{r['gpu']}" if r["gpu"] else "CPU dry run (tiny sizes: figures say nothing about a GPU)"
    s = r["sizes"]
    parts = [f"# GPU check: {where}", "",
             f"{r['date']}, torch {r['torch']}, {r['total_seconds']:.0f} s in all. Data: "
             f"{r['data']['image']} and {r['data']['sdf']}"
             f"{'' if r['data']['real'] else ' (built-ins: no real data found)'}. "
             f"SIREN {s['layers']} x {s['hidden']}, latent {s['latent']}.", "",
             "## Targets", "",
             table(["target", "measured", "goal", "where", "met"],
                   [[t["target"], num(t["measured"]), num(t["goal"]), t["where"] or "-", yes(t["met"])]
                    for t in r["targets"]]), "",
             "## Checks against the CPU/fp32 path", "",
             table(["check", "measured", "tolerance", "passed", "detail"],
                   [[c["name"], num(c["measured"]), num(c["tolerance"]), "yes" if c["passed"] else "**no**",
                     c["detail"][:120]] for c in r["checks"]]), "",
             "## Matmul peaks (n x n x n, best of 5)", "",
             table(["precision", "TFLOP/s"],
                   [[k, f"{v / 1e12:.3g}"] for k, v in r["matmul_peak_flops"].items()]),
             "", f"## Training step (batch {s['step_batch']} x {s['size']}x{s['size']}, "
             f"median of {s['step_repeats']})", "",
             table(["variant", "ms/step", "paper/this", "of peak", "peak memory"],
                   [[k, f"{v['median_seconds'] * 1e3:.2f}", f"{v['ratio_to_paper']:.2f}x",
                     f"{v['fraction_of_peak']:.1%} of {v['peak_of']}", mib(v["peak_memory_bytes"])]
                    for k, v in r["train_step"].items()]), "",
             f"## Short trainings ({s['steps']} steps)", "",
             table(["data", "variant", "seconds", "final loss", "val metric", "peak memory"],
                   [[m, k, *training_cells(v)] for m, rows in r["training"].items()
                    for k, v in rows.items()]), "",
             f"## Render {r['render_size'][0]}x{r['render_size'][1]}", "",
             table(["backend", "precision", "Mcoords/s", "of peak", "max abs diff", "peak memory",
                    "provider"],
                   [[x["backend"], x["precision"], num(x.get("coords_per_s", 0) / 1e6, ".4g"),
                     num(x.get("fraction_of_peak"), ".1%"), num(x.get("max_abs_diff"), ".2g"),
                     mib(x.get("peak_memory_bytes")), x.get("provider") or x.get("error", "torch")[:80]]
                    for x in r["render"]]), ""]
    if not r["tensorrt"]:
        parts += ["TensorRT: not present here (onnxruntime lists no TensorrtExecutionProvider).", ""]
    return "\n".join(parts)
