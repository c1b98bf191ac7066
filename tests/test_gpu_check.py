"""benchmarks/gpu_check.py: the CPU dry run (what CI runs of the GPU proof) and the no-CUDA line."""

import importlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run, on built-in data (the data dir given is empty), results in a temp folder."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    (tmp / "no-data").mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1",
           "INR_GON_CACHE": str(tmp / "cache")}
    res = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp / "out"),
                          "--data-dir", str(tmp / "no-data")], env=env, capture_output=True,
                         text=True, timeout=300)
    return res, tmp / "out"


def strict_json(name: str):
    raise AssertionError(f"{name} in the results: not strict JSON")


def test_dry_run_passes_every_check_and_writes_json_and_markdown(dry_run):
    res, out = dry_run
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_cpu-dry-run.json", "gpu_cpu-dry-run.md"]
    r = json.loads((out / "gpu_cpu-dry-run.json").read_text(), parse_constant=strict_json)
    assert r["dry_run"] is True and r["gpu"] is None and r["data"]["real"] is False
    failed = [c["name"] for c in r["checks"] if not c["passed"]]
    assert not failed
    md = (out / "gpu_cpu-dry-run.md").read_text()
    for section in ("## Targets", "## Checks", "## Matmul peaks", "## Training step",
                    "## Short trainings", "## Render 64x64"):
        assert section in md
    assert "wrote" in res.stdout


def test_dry_run_covers_every_path_the_gpu_run_measures(dry_run):
    r = json.loads((dry_run[1] / "gpu_cpu-dry-run.json").read_text())
    assert set(r["matmul_peak_flops"]) == {"fp32", "tf32", "bf16", "fp16"}
    for modality in ("image", "sdf"):
        rows = r["training"][modality]
        assert set(rows) == {"cpu fp32", "eager fp32", "compile fp32", "tf32", "bf16", "torchrun fp32"}
        assert "skipped" in rows["compile fp32"]  # minutes on a CPU: the GPU run only
        assert rows["torchrun fp32"]["backend"] == "gloo" and rows["torchrun fp32"]["all_reduce_ok"]
        assert len(rows["bf16"]["losses"]) == r["sizes"]["steps"] // r["sizes"]["log_every"]
    names = [c["name"] for c in r["checks"]]
    assert "gradients fp32 on cpu vs CPU fp32" in names
    assert "gradients vs the paper's step, fp32 on cpu" in names
    assert "export --fp16 checked on the device" in names
    step = r["train_step"]
    assert {"paper's step fp32", "inr-gon fp32", "inr-gon tf32", "inr-gon bf16"} <= set(step)
    paper = step["paper's step fp32"]["seconds"]
    for name, v in step.items():  # each ratio from its own timings, repeat by repeat
        assert len(v["seconds"]) == len(paper) and all(t > 0 for t in v["seconds"])
        ratio = statistics.median(p / t for p, t in zip(paper, v["seconds"]))
        assert v["ratio_to_paper"] == pytest.approx(ratio), name
    assert step["inr-gon fp32"]["seconds"] != paper  # timed on its own, not a copy of the paper's
    assert all(v["fraction_of_peak"] > 0 for v in step.values())
    renders = {(x["backend"], x["precision"]): x for x in r["render"]}
    assert {("torch eager", "fp32"), ("torch eager", "fp16"), ("onnxruntime", "fp32"),
            ("onnxruntime", "fp16")} <= set(renders)
    assert renders[("torch eager", "fp32")]["max_abs_diff"] == 0.0
    assert all(x["coords_per_s"] > 0 for x in renders.values())
    assert [t["met"] for t in r["targets"]] == [None] * len(r["targets"])  # n/a at tiny sizes


def test_without_cuda_it_says_so_in_one_line_and_exits_0(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    gpu_check = importlib.import_module("gpu_check")
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and "no CUDA" in out and err == ""
    assert not list(tmp_path.iterdir())  # nothing written


def test_sections_in_parts_merge_into_the_whole_report(tmp_path):
    """A GPU lent for minutes: sections in separate invocations sharing --work, joined by --merge."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1",
           "INR_GON_CACHE": str(tmp_path / "cache")}
    (tmp_path / "no-data").mkdir()
    base = [sys.executable, str(SCRIPT), "--dry-run", "--data-dir", str(tmp_path / "no-data"),
            "--work", str(tmp_path / "work")]
    for part, sections in (("a", "grads,step"), ("b", "budget"), ("c", "export,render")):
        res = subprocess.run([*base, "--sections", sections, "--out", str(tmp_path / part)], env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert not (tmp_path / part / "gpu_cpu-dry-run.md").exists()  # a part has no report
    parts = [str(tmp_path / p / "gpu_cpu-dry-run.json") for p in "abc"]
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "m"), "--merge", *parts],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads((tmp_path / "m/gpu_cpu-dry-run.json").read_text())
    assert r["sections"] == ["grads", "step", "budget", "export", "render"] and r["invocations"] == 3
    # the figures are the budget run's own: its last step and its held-out evaluation
    records = [json.loads(x) for x in (tmp_path / "work/budget/metrics.jsonl").read_text().splitlines()]
    assert r["budget"]["steps"] == records[-1]["step"] > 0
    assert r["budget"]["val_psnr"] == pytest.approx(records[-1]["val_psnr"])
    assert "train_step" in r and r["render"] and "training" not in r
    md = (tmp_path / "m/gpu_cpu-dry-run.md").read_text()
    assert "## Time-budget training" in md and "Not run: train." in md


def test_a_section_past_the_deadline_is_skipped_and_said(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1"}
    (tmp_path / "no-data").mkdir()
    res = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--data-dir", str(tmp_path / "no-data"),
                          "--sections", "grads,budget", "--deadline", "1e-9", "--out", str(tmp_path / "o")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads((tmp_path / "o/gpu_cpu-dry-run.json").read_text())
    assert r["sections"] == ["grads"] and r["skipped"] == ["budget"]
