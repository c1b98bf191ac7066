"""Process settings: the allocator keeps freed blocks (no page faults on reuse), threads, TF32."""

import subprocess
import sys

import pytest
import torch

from inr_gon.config import Config
from inr_gon.device import configure, keep_freed_memory, native_bf16, uses_bf16

CHURN = """
import resource, sys, torch
from inr_gon.device import keep_freed_memory
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def churn():  # a training step's pattern: large temporaries made and freed
    x = torch.rand(10_000_000)  # 40 MB, above glibc's largest mmap threshold (32 MB)
    for _ in range(4):
        x = torch.sin(x) * 0.5
if sys.argv[1] == "keep":
    assert keep_freed_memory()
churn()
churn()
before = faults()
churn()
print(faults() - before)
"""


def faults(*modes):
    """Minor page faults of the third churn, one fresh process per mode (run side by side)."""
    procs = [subprocess.Popen([sys.executable, "-c", CHURN, m], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={"OMP_NUM_THREADS": "1", "PATH": ""}) for m in modes]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    return [int(out) for out, _ in outs]


def test_kept_memory_is_reused_without_page_faults():
    if not sys.platform.startswith("linux"):  # glibc's mallopt; elsewhere a no-op
        assert keep_freed_memory() is False
        return
    default, kept = faults("default", "keep")
    # 9 tensors of 40 MB: glibc maps and unmaps each (~10k faults apiece, ~88k here); kept:
    # freed blocks are reused (measured 0 faults, sometimes ~10k when one 64-byte-aligned
    # request misses a hole that would fit)
    assert default > 40_000
    assert kept < default / 4


def test_configure_reports_what_it_set():
    threads = torch.get_num_threads()
    try:
        applied = configure(Config.of(threads=1), torch.device("cpu"))
        assert applied["threads"] == 1 and torch.get_num_threads() == 1
        assert "keep_freed_memory" in applied and "tf32" not in applied  # TF32 is CUDA's
    finally:
        torch.set_num_threads(threads)


def test_precision_choices():
    for p in ("fp32", "tf32", "bf16", "auto"):
        assert Config.of(precision=p).validate().train.precision == p


@pytest.mark.parametrize("native", [False, True])
def test_precision_auto_is_bf16_only_where_the_cpu_has_it_natively(monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    cpu = torch.device("cpu")
    assert native_bf16(cpu) is native
    assert uses_bf16(Config.of(precision="auto", model="local"), cpu) is native
    assert uses_bf16(Config.of(precision="auto"), cpu) is native  # the image GON, guarded
    sdf = Config.of(precision="auto", modality="sdf", channels=1)
    assert not uses_bf16(sdf, cpu)  # the SDF GON: not measured in bf16
    assert uses_bf16(Config.of(precision="bf16"), cpu)  # asked for by name: always
    assert not uses_bf16(Config.of(precision="fp32", model="local"), cpu)
    local = Config.of(precision="auto", model="local", threads=torch.get_num_threads())
    assert configure(local, cpu)["bf16"] is native
