"""torchrun with 2 CPU processes (gloo): same weights on every rank, same result as one process
on the same global batch, and resume across launches."""

import json
import os
import subprocess
import sys

import pytest
import torch

from inr_gon.config import Config
from inr_gon.errors import InputError
from inr_gon.io import load_tensors
from inr_gon.training.distributed import World, rank_generator, shard
from inr_gon.training.train import train

TINY = ["--size", "8", "--batch-size", "4", "--hidden", "16", "--layers", "2", "--latent-dim", "4",
        "--val-fraction", "0.25", "--checkpoint-every", "2", "--preview-every", "0", "--log-every", "2",
        "--quiet",
        "--device", "cpu"]
# Adam over a few steps: the two-rank gradient is (g0 + g1) / 2 instead of one mean over the
# batch, equal up to float32 rounding; measured max difference ~1e-9.
ATOL = 1e-6


def torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "inr_gon", "train", "builtin:shapes", *TINY, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1"}
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_two_ranks_match_one_process_and_resume(tmp_path):
    res = torchrun("--steps", "4", "--out", "ddp", cwd=tmp_path)
    assert res.stdout.count("run ddp: step 4") == 1  # rank 0 alone reports
    state = json.loads((tmp_path / "ddp" / "train_state.json").read_text())
    # checked by every checkpoint: max over ranks == min over ranks, bit for bit
    assert state["world_size"] == 2 and state["ranks_identical"] is True
    torchrun("--steps", "6", "--out", "ddp", "--resume", cwd=tmp_path)

    cfg = Config.of(data="builtin:shapes", height=8, width=8, batch_size=4, hidden=16, layers=2,
                    latent_dim=4, val_fraction=0.25, checkpoint_every=2, preview_every=0, log_every=2,
                    steps=4, device="cpu")
    train(cfg, tmp_path / "one", quiet=True)  # the same two legs (the lr schedule follows steps)
    train(cfg.replace(steps=6), tmp_path / "one", resume=True, quiet=True)
    ddp, _ = load_tensors(tmp_path / "ddp" / "model.safetensors")
    one, _ = load_tensors(tmp_path / "one" / "model.safetensors")
    assert ddp.keys() == one.keys()
    for k in one:
        assert torch.allclose(ddp[k], one[k], rtol=0, atol=ATOL), (k, (ddp[k] - one[k]).abs().max())
    rows = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 6]  # one writer, resume trimmed


def test_shards_cover_the_global_batch_once():
    idx = torch.arange(12)
    parts = [shard(idx, World(rank=r, size=3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx)
    assert torch.equal(shard(idx, World()), idx)


def test_batch_must_split_evenly(tmp_path, monkeypatch):
    from inr_gon.training import distributed

    monkeypatch.setattr(distributed, "_join", lambda device: (World(0, 3), device))
    cfg = Config.of(height=8, width=8, batch_size=4, hidden=8, layers=2, latent_dim=4, steps=1)
    with pytest.raises(InputError, match="multiple of the number of processes"):
        train(cfg, tmp_path / "run", quiet=True)


def test_rank_noise_streams_differ_and_rank0_keeps_the_single_process_one():
    g = torch.Generator().manual_seed(123)
    assert rank_generator(g, 0) is g and rank_generator(None, 1) is None
    a = torch.randn(4, generator=rank_generator(torch.Generator().manual_seed(123), 1))
    b = torch.randn(4, generator=torch.Generator().manual_seed(123))
    assert not torch.equal(a, b)


def test_sdf_ranks_take_their_rows_of_the_global_batch(tiny_sdf_cfg):
    from inr_gon.training.tasks import make_task

    cfg = tiny_sdf_cfg.replace(batch_size=4)
    one = make_task(cfg, torch.device("cpu"), quiet=True)
    coords, values = one.batch(2)
    for rank in range(2):
        task = make_task(cfg, torch.device("cpu"), quiet=True)
        task.world = World(rank=rank, size=2)
        c, v = task.batch(2)
        assert torch.equal(c, coords[2 * rank:2 * rank + 2]) and torch.equal(v, values[2 * rank:2 * rank + 2])


def test_a_torchrun_launch_into_a_locked_folder_exits_2_on_every_rank(tmp_path):
    """Rank 0 alone takes the run folder's lock; when it cannot, every rank stops (none waits at
    a barrier for it). The test process holds the lock on a descriptor of its own."""
    import fcntl

    run = tmp_path / "ddp"
    run.mkdir()
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps({"pid": os.getpid(), "command": "the test"}).encode())
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "inr_gon", "train", "builtin:shapes", *TINY, "--steps", "2", "--out", "ddp"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONSAFEPATH": "1"}
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    finally:
        os.close(fd)
    # Both ranks stop with their line; rank 0 exits 2. Rank 1 exits 2 too unless torchrun's agent,
    # on seeing rank 0 fail, SIGTERMs it first (a race the agent decides, not inr-gon), so its
    # exit code is not asserted; the agent then reports the failure with its own traceback.
    assert res.returncode != 0 and "exitcode  : 2 " in res.stderr, res.stderr[-3000:]
    assert f"error: ddp is in use: process {os.getpid()} (the test)" in res.stderr
    assert "rank 0 could not lock" in res.stderr  # rank 1's line
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written
