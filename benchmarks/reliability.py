"""Run the reliability, security and hostile-input suites and publish what they measured.

    .venv/bin/python benchmarks/reliability.py

The suites write their figures (INR_GON_FIGURES, see tests/figures.py) while they assert on
them; this script collects them into benchmarks/results/reliability.{json,md}.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = ["tests/test_reliability.py", "tests/test_runlock.py", "tests/test_resources.py",
          "tests/test_security.py", "tests/test_hostile_inputs.py"]


def read(folder: Path, name: str) -> list[dict]:
    path = folder / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def run_suites(folder: Path) -> dict:
    env = {**os.environ, "INR_GON_FIGURES": str(folder), "PYTHONSAFEPATH": "1",
           "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    summary = (p.stdout.strip().splitlines() or ["(no output)"])[-1]
    return {"exit": p.returncode, "summary": summary, "seconds": round(time.perf_counter() - t0, 1)}


def collect(folder: Path, suites: dict) -> dict:
    kill = read(folder, "kill")
    hostile = read(folder, "hostile")
    outcomes = collections.Counter(r["outcome"] for r in hostile)
    return {
        "suites": suites,
        "sigkill": kill[-1] if kill else None,
        "disk_full": read(folder, "disk_full"),
        "lock": read(folder, "lock"),
        "oom": read(folder, "oom"),
        "locked_rows": dict(collections.Counter(r["outcome"] for r in hostile
                                             if r["id"].startswith("locked-"))),
        "pickle": read(folder, "pickle")[-1:] or None,
        "paths": read(folder, "paths")[-1:] or None,
        "atomic": read(folder, "atomic")[-1:] or None,
        "hostile": {"cli_cases": sum(r["via"] == "cli" for r in hostile),
                    "api_cases": sum(r["via"] == "api" for r in hostile),
                    "outcomes": dict(outcomes),
                    "cli_commands": dict(collections.Counter(r.get("command") for r in hostile
                                                             if r["via"] == "cli")),
                    "cli_commands_shapes": dict(collections.Counter(
                        r.get("command") for r in hostile if r["via"] == "cli" and r.get("shapes"))),
                    "fuzz_examples": sum(r["examples"] for r in read(folder, "fuzz"))},
        "python": sys.version.split()[0], "cpus": os.cpu_count(),
    }


def per_command(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def markdown(f: dict) -> str:
    k, h = f["sigkill"] or {}, f["hostile"]
    pk = (f["pickle"] or [{}])[0]
    pa = (f["paths"] or [{}])[0]
    at = (f["atomic"] or [{}])[0]
    locks = {r["case"]: r for r in f["lock"]}
    race = locks.get("two trains started together", {})
    racing = locks.get("--resume racing export", {})
    lr = f["locked_rows"]
    oom = "; ".join(f"{r['case']}: exit {r['exit']}" for r in f["oom"])
    disk = ", ".join(f"{d['hit']}: exit {d['exit_code']}, checkpoint of step {d['checkpoint_kept']} kept"
                     for d in f["disk_full"])
    rows = [
        ("SIGKILL during `train` (kills survived)", f"{k.get('kills', 0)} of {k.get('kills', 0)}"),
        ("  of which during a checkpoint write",
         f"{k.get('killed_mid_checkpoint_write', 0)} ({', '.join(k.get('half_written_files', []))})"),
        ("  files re-loaded after the kills", k.get("files_checked_after_kills", 0)),
        ("  files lost or unloadable", k.get("files_lost", "n/a")),
        ("  resumed weights == uninterrupted run (CPU, bit for bit)",
         k.get("final_weights_equal_uninterrupted")),
        ("disk full while saving (injected ENOSPC; real tmpfs; real RLIMIT_FSIZE)", disk or "n/a"),
        ("two `train`s into one folder, started together: exit codes", race.get("exits", "n/a")),
        ("`--resume` racing `export`: writers refused (exit 2, holder named) / readers that worked",
         f"{racing.get('writers_refused', 'n/a')} / {racing.get('readers_ok', 'n/a')}"),
        ("locked-folder rows in the hostile table: writers refused / readers that worked",
         f"{lr.get('error', 0)} / {lr.get('ok', 0)}"),
        ("lock of a SIGKILLed holder left stale", "no" if "holder SIGKILLed, then --resume" in locks
         else "n/a"),
        ("readers during a half-written checkpoint (loaded the whole previous one)",
         locks.get("reader mid-checkpoint", {}).get("readers_ok", "n/a")),
        ("out of memory (one line, last checkpoint, the flag)", oom or "n/a"),
        ("pickle payloads planted (refused + ignored) / executed",
         f"{pk.get('planted', 0)} ({pk.get('refused', 0)} + {pk.get('ignored', 0)}) / "
         f"{pk.get('executed', 'n/a')}"),
        ("commands watched / hostile item names / files written outside --out",
         f"{pa.get('commands', 0)} / {pa.get('hostile_names', 0)} / {pa.get('written_outside_out', 'n/a')}"),
        ("outputs of fit, sample, interpolate / written in place (not by atomic rename)",
         f"{at.get('outputs', 0)} / {at.get('written_in_place', 'n/a')}"),
        ("hostile inputs through the CLI (table rows)", h["cli_cases"]),
        ("  rows per command", per_command(h["cli_commands"])),
        ("  of which on 3D shapes (mesh files, builtin:shapes3d, SDF runs)",
         f"{sum(h['cli_commands_shapes'].values())}: {per_command(h['cli_commands_shapes'])}"),
        ("hostile inputs through the Python API", h["api_cases"]),
        ("random inputs (hypothesis examples)", h["fuzz_examples"]),
        ("outcomes of the hostile rows", ", ".join(f"{v} {k}" for k, v in sorted(h["outcomes"].items()))),
        ("tracebacks / hangs", "0 / 0" if f["suites"]["exit"] == 0 else "see the failing suite"),
    ]
    lines = ["# Reliability figures", "",
             "Generated by `.venv/bin/python benchmarks/reliability.py` from one run of "
             f"{', '.join(SUITES)}: {f['suites']['summary']} ({f['cpus']} CPUs shared with other "
             f"jobs, load average {f['load_average_at_start']} at the start; Python {f['python']}).", "",
             "| measure | value |", "| --- | --- |"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        load = os.getloadavg()[0]
        suites = run_suites(Path(tmp))
        figures = collect(Path(tmp), suites)
        figures["load_average_at_start"] = round(load, 1)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reliability.json").write_text(json.dumps(figures, indent=2) + "\n")
    text = markdown(figures)
    (out / "reliability.md").write_text(text)
    print(text)
    sys.exit(suites["exit"])


if __name__ == "__main__":
    main()
