"""gpu_check.py's results as the issue's targets and as a Markdown report."""

from __future__ import annotations

import math

RENDER_RATE, RENDER_PEAK, STEP_RATIO = 1e9, 0.5, 5.0  # issue 16, on an H100 or H200


def targets(r: dict) -> list[dict]:
    """The issue's targets against this run's figures; met is None in a dry run (tiny sizes
    on a CPU say nothing about a GPU) and where the section behind a figure did not run."""
    half = [x for x in r.get("render", []) if x["precision"] == "fp16" and "coords_per_s" in x]
    best = max(half, key=lambda x: x["coords_per_s"], default=None)
    best_frac = max(half, key=lambda x: x["fraction_of_peak"], default=None)
    ours = {k: v for k, v in r.get("train_step", {}).items() if not k.startswith("paper")}
    fastest = max(ours, key=lambda k: ours[k]["ratio_to_paper"], default=None)
    fp32 = next((c for c in r["checks"] if c["name"].startswith("gradients fp32 on")), None)
    rows = [
        (f"render >= {RENDER_RATE:.0e} coordinates/s in fp16", best and best["coords_per_s"],
         RENDER_RATE, best and f"{best['backend']} fp16"),
        (f"render >= {RENDER_PEAK:.0%} of the fp16 matmul peak", best_frac and best_frac["fraction_of_peak"],
         RENDER_PEAK, best_frac and f"{best_frac['backend']} fp16"),
        (f"training step >= {STEP_RATIO:.0f}x the paper's step", fastest and ours[fastest]["ratio_to_paper"],
         STEP_RATIO, fastest),
        ("training step fp32 vs the paper's step", ours.get("inr-gon fp32", {}).get("ratio_to_paper"),
         STEP_RATIO, "inr-gon fp32 (eager)"),
        ("identical fp32 gradients (CPU vs device)", fp32 and fp32["measured"],
         fp32["tolerance"] if fp32 else 1e-4, "relative"),
    ]
    out = []
    for name, value, goal, where in rows:
        at_most = name.startswith("identical")
        met = None if r["dry_run"] or value is None else (value <= goal if at_most else value >= goal)
        out.append({"target": name, "measured": value, "goal": goal, "where": where, "met": met})
    return out


def merge(parts: list[dict]) -> dict:
    """Results of several invocations (--sections) as one: later sections win, checks are
    joined (a check measured again replaces the earlier one), seconds add up."""
    out = dict(parts[0])
    out["checks"], out["seconds"], out["sections"] = [], {}, []
    for p in parts:
        for key in ("training", "train_step", "render", "render_size", "tensorrt", "budget"):
            if key in p:
                out[key] = p[key]
        names = {c["name"] for c in p["checks"]}
        out["checks"] = [c for c in out["checks"] if c["name"] not in names] + p["checks"]
        out["seconds"].update(p["seconds"])
        out["sections"] += [s for s in p["sections"] if s not in out["sections"]]
        for key in ("onnxruntime_providers", "date"):
            out[key] = p.get(key, out.get(key))
    out["total_seconds"] = sum(p["total_seconds"] for p in parts)
    out["invocations"] = len(parts)
    out.pop("skipped", None)
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
    runs = f" over {r['invocations']} invocations" if r.get("invocations", 1) > 1 else ""
    parts = [f"# GPU check: {where}", "",
             f"{r['date']}, torch {r['torch']}, {r['total_seconds']:.0f} s in all{runs}. Data: "
             f"{r['data']['image']} and {r['data']['sdf']}"
             f"{'' if r['data']['real'] else ' (built-ins: no real data found)'}. "
             f"SIREN {s['layers']} x {s['hidden']}, latent {s['latent']}. onnxruntime providers: "
             f"{', '.join(r.get('onnxruntime_providers', [])) or 'none'}.", "",
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
                   [[k, f"{v / 1e12:.3g}"] for k, v in r["matmul_peak_flops"].items()]), ""]
    if "train_step" in r:
        parts += [f"## Training step (batch {s['step_batch']} x {s['size']}x{s['size']}, "
                  f"median of {s['step_repeats']})", "",
                  table(["variant", "ms/step", "paper/this", "of peak", "peak memory"],
                        [[k, f"{v['median_seconds'] * 1e3:.2f}", f"{v['ratio_to_paper']:.2f}x",
                          f"{v['fraction_of_peak']:.1%} of {v['peak_of']}", mib(v["peak_memory_bytes"])]
                         for k, v in r["train_step"].items()]), ""]
    if "training" in r:
        parts += [f"## Short trainings ({s['steps']} steps)", "",
                  table(["data", "variant", "seconds", "final loss", "val metric", "peak memory"],
                        [[m, k, *training_cells(v)] for m, rows in r["training"].items()
                         for k, v in rows.items()]), ""]
    if "budget" in r:
        b = r["budget"]
        c = b["config"]
        parts += [f"## Time-budget training: the image folder defaults for {b['time_budget']}", "",
                  f"modulation {c['modulation']}, {c['latent_grid']}x{c['latent_grid']} grid of "
                  f"{c['latent_dim']}, {c['origin_step']} step, SIREN {c['layers']} x {c['hidden']}, "
                  f"batch {c['batch_size']}, {c['precision']}{', compiled' if c['compile'] else ''}.", "",
                  table(["steps", "steps/s", "train PSNR", "held-out PSNR", "wall seconds", "peak memory"],
                        [[b["steps"], num(b["steps_per_second"], ".3g"), num(b["train_psnr"], ".2f"),
                          num(b["val_psnr"], ".2f"), num(b["wall_seconds"], ".0f"),
                          mib(b["peak_memory_bytes"])]]), ""]
    if "render" in r:
        parts += [f"## Render {r['render_size'][0]}x{r['render_size'][1]}", "",
                  table(["backend", "precision", "Mcoords/s", "of peak", "max abs diff", "peak memory",
                         "provider"],
                        [[x["backend"], x["precision"], num(x.get("coords_per_s", 0) / 1e6, ".4g"),
                          num(x.get("fraction_of_peak"), ".1%"), num(x.get("max_abs_diff"), ".2g"),
                          mib(x.get("peak_memory_bytes")), x.get("provider") or x.get("error", "torch")[:80]]
                         for x in r["render"]]), ""]
        if not r["tensorrt"]:
            parts += ["TensorRT: not present here (onnxruntime lists no TensorrtExecutionProvider).", ""]
    missing = [x for x in ("train", "grads", "step", "export", "render", "budget")
               if x not in r.get("sections", [])]
    if missing:
        parts += [f"Not run: {', '.join(missing)}.", ""]
    return "\n".join(parts)
