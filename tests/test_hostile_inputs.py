"""Hostile inputs through the command line (the table in hostile_cases.py), the Python API and
hypothesis: exit 2 with one line, or a skip with a warning naming the file; never a traceback,
never a hang."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import string
import struct
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import guards
import hostile_commands
import hostile_files as hf
import hostile_locks
import hostile_shapes
import numpy as np
import pytest
import torch
from cli_helpers import cli_exit, one_error_line
from figures import record
from hostile_cases import CASES, RUN_FLAGS, TRAIN, Case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inr_gon.cli.common import parse_size
from inr_gon.config import Config
from inr_gon.datasets import Sampling, load_image_file, load_images, load_shapes
from inr_gon.errors import InputError
from inr_gon.inference.evaluate import evaluate
from inr_gon.inference.fit import fit_images
from inr_gon.inference.latents import check_latents_path, load_latents
from inr_gon.inference.sample import check_animation_path, endpoint_latents, sample_latents
from inr_gon.io import load_tensors
from inr_gon.run import load_run

TIMEOUT = 60  # seconds: an input that hangs a loader fails its row instead of the suite


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no `except Exception` in the code under test
    can mistake a hang for an unreadable file."""


@contextlib.contextmanager
def deadline(seconds: int = TIMEOUT):
    def expire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


ALL_CASES = CASES + hostile_commands.CASES + hostile_shapes.CASES + hostile_locks.CASES
SHAPE_ROWS = ({c.id for c in hostile_shapes.CASES}  # counted apart in the published figures
              | {c.id for c in hostile_locks.CASES if c.run == "sdf"})
assert len({c.id for c in ALL_CASES}) == len(ALL_CASES), "case ids must be unique"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """kind -> a tiny run trained on first use (gon, conv, ae, vgon: RUN_FLAGS; sdf: a tiny
    SDF run, hostile_shapes.make_sdf_run)."""
    root, made = tmp_path_factory.mktemp("hostile"), {}

    def get(kind: str) -> Path:
        if kind == "sdf" and kind not in made:
            made[kind] = root / kind
            hostile_shapes.make_sdf_run(made[kind])
        if kind not in made:
            out = root / kind
            flags = [a.replace("{out}", str(out)) for a in TRAIN]
            assert cli_exit("train", "builtin:shapes:8", *flags, *RUN_FLAGS[kind]) == 0
            made[kind] = out
        return made[kind]
    return get


@pytest.fixture(scope="module")
def trained(runs):
    return runs("gon")


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    with deadline():
        code = cli_exit(*argv)
    return code, capsys.readouterr().err


def readable(path: Path) -> bool:
    """Can this process read path (a chmod-000 file or folder)? Root can; others cannot."""
    try:
        if path.is_dir():
            os.listdir(path)
        else:
            path.open("rb").close()
        return True
    except OSError:
        return False


def trained_count(out: Path) -> int:
    return json.loads((out / "config.json").read_text())["extra"]["data"]["count"]


def check_outcome(case: Case, d: Path, code: int, err: str, out_existed: bool) -> str:
    out = d / "out"
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    expect, count = case.expect, case.count
    assert case.words or expect == "ok", "a failing row must name the words its message holds"
    if expect == "perm":
        locked = d / "data" / case.words[0]
        expect, count = ("ok", 2) if readable(locked) else ("warn", 1)
    if expect == "usage":
        assert code == 2 and all(w in one_error_line(err) for w in case.words), err
    elif expect == "error":
        assert code == 2, err
        assert lines and lines[-1].startswith("error: "), err
        assert all(x.startswith("warning: ") for x in lines[:-1]), err
        assert all(w in lines[-1] for w in case.words), err
        assert out_existed or not out.exists(), "a failed command left an output folder"
    else:
        assert code == 0, err
        assert all(x.startswith("warning: ") for x in lines), err
        if expect == "warn":
            assert any(all(w in x for w in case.words) for x in lines), err
        if count is not None:
            assert trained_count(out) == count
    return expect


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_hostile_input(case: Case, tmp_path, capsys, runs):
    d = tmp_path / "case"
    d.mkdir()
    if any("{run}" in a for a in case.argv):
        shutil.copytree(runs(case.run), d / "run")
    if case.files:
        case.files(d)
    argv = [a.format(d=d, run=d / "run", out=d / "out") for a in case.argv]
    out_existed = (d / "out").exists()
    try:
        with guards.watch(d / "outside"):
            code, err = run_cli(capsys, argv)
    finally:
        for p in d.rglob("*"):  # undo chmod 000 so the folder can be cleaned up
            if not p.is_symlink() and p.stat().st_mode & 0o777 == 0:
                p.chmod(0o755)
    outcome = check_outcome(case, d, code, err, out_existed)
    if case.check:
        case.check(d)
    record("hostile", id=case.id, via="cli", command=case.argv[0], expect=case.expect, outcome=outcome,
           exit=code, shapes=case.id in SHAPE_ROWS)


# ---- the Python API --------------------------------------------------------------------------

def api_cases(run: Path, d: Path) -> dict:
    """name -> (call, expected outcome, words): InputError with one line, or a warning."""
    hf.good_png(d / "good.png")
    (d / "zero.png").write_bytes(b"")
    hf.fifo(d / "fifo.png")
    hf.garbage(d / "z.safetensors")
    hf.npy(np.full((2, 4, 4), np.nan, np.float32))(d / "nan.npy")
    hf.npz()(d / "empty.npz")
    hf.npy(np.zeros((2, 5, 5), np.uint8))(d / "big.npy")
    (d / "mixed").mkdir()
    hf.good_png(d / "mixed" / "a.png")
    hf.garbage(d / "mixed" / "b.png")
    r = load_run(run)
    return {
        "load_images(zero-byte)": (lambda: load_images(d / "zero.png"), "error", "cannot read"),
        "load_images(fifo)": (lambda: load_images(d / "fifo.png"), "error", "regular"),
        "load_images(nan.npy)": (lambda: load_images(d / "nan.npy"), "error", "NaN"),
        "load_images(empty.npz)": (lambda: load_images(d / "empty.npz"), "error", "no arrays"),
        "load_images(size=0)": (lambda: load_images(d / "good.png", size=0), "error", "positive"),
        "load_images(limit=-1)": (lambda: load_images(d / "good.png", limit=-1), "error", "limit"),
        "load_images(mixed folder)": (lambda: load_images(d / "mixed"), "warn", "b.png"),
        "load_image_file(folder)": (lambda: load_image_file(d / "mixed"), "error", "folder"),
        "load_run(missing)": (lambda: load_run(d / "nope"), "error", "no such run"),
        "load_run(not a run)": (lambda: load_run(d), "error", "not a run"),
        "load_run(device tpu)": (lambda: load_run(run, device="tpu"), "error", "device"),
        "encode(larger)": (lambda: r.encode(np.zeros((1, 9, 9, 3))), "error", "resample"),
        "encode(1x1)": (lambda: r.encode(np.zeros((1, 1, 1, 3))), "error", "2x2"),
        "encode(NaN)": (lambda: r.encode(np.full((1, 8, 8, 3), np.nan)), "error", "NaN"),
        "encode(strings)": (lambda: r.encode([["a"]]), "error", "float array"),
        "render(wrong latent dim)": (lambda: r.render(torch.zeros(1, 9)), "error", "latents"),
        "render(NaN latent)": (lambda: r.render(torch.full((1, 4), float("nan"))), "error", "finite"),
        "render(size 0)": (lambda: r.render(torch.zeros(1, 4), (0, 5)), "error", "render size"),
        "render(size huge)": (lambda: r.render(torch.zeros(1, 4), (10**6, 2)), "error", "render size"),
        "load_latents(garbage)": (lambda: load_latents(d / "z.safetensors", 4), "error", "safetensors"),
        "Config.from_dict(list)": (lambda: Config.from_dict([1]), "error", "object"),
        "Config.from_json(nested)": (lambda: Config.from_json("[" * 10**5), "error", "config"),
        "fit_images(larger)": (lambda: fit_images(r, np.zeros((1, 9, 9, 3)), ["a"]), "error", "resample"),
        "fit_images(NaN)": (lambda: fit_images(r, np.full((1, 8, 8, 3), np.nan), ["a"]), "error", "NaN"),
        "evaluate(unknown builtin)": (lambda: evaluate(r, "builtin:nope"), "error", "builtin:shapes"),
        "evaluate(limit 0)": (lambda: evaluate(r, "builtin:shapes:4", limit=0), "error", "--limit"),
        "evaluate(other size)": (lambda: evaluate(r, str(d / "big.npy")), "warn", "big.npy"),
        "sample_latents(n 0)": (lambda: sample_latents(r, 0), "error", "-n"),
        "sample_latents(prior model)": (lambda: sample_latents(r, 2, "model"), "error", "variational"),
        "sample_latents(seed 2^64)": (lambda: sample_latents(r, 2, seed=2**64), "error", "--seed"),
        "endpoint_latents(folder)": (lambda: endpoint_latents(r, d / "mixed", d / "good.png"), "error",
                                     "folder"),
        "check_animation_path(.avi)": (lambda: check_animation_path(d / "w.avi"), "error", ".gif"),
        "check_latents_path(run model)": (lambda: check_latents_path(run / "model.safetensors"), "error",
                                          "run's own"),
    }


@pytest.mark.parametrize("kind", ["gon", "sdf"])
def test_python_api_hostile_inputs(kind, runs, tmp_path, capsys):
    cases = (api_cases if kind == "gon" else hostile_shapes.api_cases)(runs(kind), tmp_path)
    for name, (call, expect, words) in cases.items():
        with deadline():
            if expect == "error":
                with pytest.raises(InputError) as e:
                    call()
                assert words in str(e.value) and "\n" not in str(e.value), (name, str(e.value))
            else:
                call()
                err = capsys.readouterr().err
                assert any(x.startswith("warning: ") and words in x for x in err.splitlines()), name
        record("hostile", id=name, via="api", expect=expect, outcome=expect)


def test_unreadable_file_and_folder_as_a_non_root_user(tmp_path, capsys, monkeypatch):
    """chmod 000 does not stop root, so as root the kernel's refusal (EACCES) is reproduced
    by refusing those two paths in os.stat/os.scandir/open; as another user it is real."""
    hf.good_png(tmp_path / "data" / "good.png")
    hf.good_png(tmp_path / "data" / "locked.png")
    hf.good_png(tmp_path / "data" / "sub" / "inside.png")
    locked = [tmp_path / "data" / "locked.png", tmp_path / "data" / "sub"]
    if readable(locked[0]) and os.geteuid() == 0:
        import builtins

        def refuse(real):
            def call(path, *args, **kwargs):
                if Path(os.fsdecode(path)) in locked:
                    raise PermissionError(13, "Permission denied", os.fsdecode(path))
                return real(path, *args, **kwargs)
            return call

        monkeypatch.setattr(os, "scandir", refuse(os.scandir))
        monkeypatch.setattr(builtins, "open", refuse(builtins.open))
    else:
        for p in locked:
            p.chmod(0)
    argv = ["train", str(tmp_path / "data"), *(a.format(out=tmp_path / "out") for a in TRAIN)]
    try:
        code, err = run_cli(capsys, argv)
    finally:
        monkeypatch.undo()
        for p in locked:
            p.chmod(0o755)
    assert code == 0 and "Traceback" not in err, err
    warnings = [x for x in err.splitlines() if x.startswith("warning: ")]
    assert any("locked.png" in x for x in warnings) and any("sub" in x for x in warnings), err
    assert trained_count(tmp_path / "out") == 1
    record("hostile", id="unreadable-as-non-root", via="api", expect="warn", outcome="warn",
           simulated=os.geteuid() == 0)


def test_out_of_memory_while_loading_is_one_line(monkeypatch, capsys, tmp_path):
    """numpy's MemoryError for an enormous stack becomes an error line, not a traceback."""
    def too_big(*args, **kwargs):
        raise MemoryError("Unable to allocate 412. GiB for an array with shape (512, 8192, 8192, 3)")

    monkeypatch.setattr("inr_gon.datasets.builtin.render_shapes", too_big)
    code, err = run_cli(capsys, ["train", "builtin:shapes", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2 and err.startswith("error: builtin:shapes: not enough memory"), err
    assert len(err.splitlines()) == 1


def test_a_real_subprocess_never_shows_a_traceback(trained, tmp_path):
    """Real processes: real exit codes, real stdout/stderr encodings (an undecodable file name
    in a warning and in the table of renders)."""
    hf.fifo(tmp_path / "fifo.png")
    (tmp_path / "data").mkdir()
    hf.good_png(tmp_path / "data" / "\udcffgood.png")
    hf.garbage(tmp_path / "data" / "\udcffbad.png")
    env = {**os.environ, "PYTHONSAFEPATH": "1", "LC_ALL": "C.UTF-8"}
    for argv, code, words in [(["train", "fifo.png", "--out", "a", "--quiet"], 2, "not a regular file"),
                              (["render", str(trained), "data", "--out", "r"], 0, "\\udcffbad.png")]:
        p = subprocess.run([sys.executable, "-m", "inr_gon", *argv], cwd=tmp_path, env=env,
                           capture_output=True, timeout=120)
        err = p.stderr.decode("utf-8")  # valid UTF-8 even for undecodable names
        assert p.returncode == code and "Traceback" not in err and words in err, err
        if code == 2:
            assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert len(list((tmp_path / "r").glob("*good.png"))) == 1


# ---- hypothesis: random bytes and values ----------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
MAGIC = [b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM", b"RIFF",
         b""]
tried = {"bytes": 0}


@pytest.fixture(scope="module", autouse=True)
def count_fuzz_examples():
    yield
    if tried["bytes"]:
        record("fuzz", examples=tried["bytes"], properties=6)


def outcome(call):
    """Run call under a deadline: its value, or None for an InputError with a one-line message."""
    tried["bytes"] += 1
    with deadline(30):
        try:
            return call()
        except InputError as e:
            assert "\n" not in str(e)
            return None


@FUZZ
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=400),
       ext=st.sampled_from([".png", ".gif", ".jpg", ".tif", ".bmp", ".webp"]))
def test_fuzz_image_bytes(magic, body, ext):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{ext}"
        path.write_bytes(magic + body)
        img = outcome(lambda: load_image_file(path))
        if img is not None:
            assert img.dtype == np.float32 and img.ndim == 3 and img.shape[-1] in (1, 3)
            assert np.isfinite(img).all() and img.min() >= 0 and img.max() <= 1


@FUZZ
@given(header=st.dictionaries(st.sampled_from(["descr", "fortran_order", "shape", "x"]),
                              st.one_of(st.text(max_size=6), st.booleans(),
                                        st.lists(st.integers(-3, 10**6), max_size=5)), max_size=4),
       body=st.binary(max_size=300), ext=st.sampled_from([".npy", ".npz"]))
def test_fuzz_numpy_files(header, body, ext):
    text = repr({k: tuple(v) if isinstance(v, list) else v for k, v in header.items()}).encode()
    head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) + 1) + text + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{ext}"
        path.write_bytes(head + body)
        data = outcome(lambda: load_images(path))
        if data is not None:
            assert np.isfinite(data.images).all()


FIELD_NAMES = list(Config().to_dict())
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(string.ascii_lowercase, max_size=6),
                               JSON_VALUES, max_size=4))
def test_fuzz_config_fields(changes):
    cfg = outcome(lambda: Config.from_dict({**Config().to_dict(), **changes}))
    if cfg is not None:
        assert cfg.validate() is cfg and Config.from_json(cfg.to_json()) == cfg


@FUZZ
@given(n=st.integers(0, 2**64 - 1), header=st.binary(max_size=200), body=st.binary(max_size=64))
def test_fuzz_safetensors_bytes(n, header, body):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.safetensors"
        path.write_bytes(struct.pack("<Q", min(n, len(header)) if n % 2 else n) + header + body)
        outcome(lambda: load_tensors(path))


COORD = st.one_of(st.floats(-10, 10), st.sampled_from([0.0, 1e-30, 1e30, -1e30, 1e300, 5e-324, np.nan,
                                                      np.inf]))


@FUZZ
@given(ext=st.sampled_from([".obj", ".off", ".ply", ".stl"]),
       vertices=st.lists(st.tuples(COORD, COORD, COORD), min_size=3, max_size=8),
       faces=st.lists(st.tuples(*[st.integers(-1, 8)] * 3), min_size=1, max_size=8))
def test_fuzz_mesh_files(ext, vertices, faces):
    """Odd geometry (huge, tiny, non-finite, repeated or out-of-range): one-line errors or
    finite samples in the unit cube, and no numpy warning printed on the way."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{ext}"
        hostile_shapes.mesh_file(path, vertices, faces)
        with warnings.catch_warnings(record=True) as printed:
            warnings.simplefilter("always")
            shapes = outcome(lambda: load_shapes(path, Sampling(count=64), quiet=True))
        assert not printed, [str(w.message) for w in printed]
        if shapes is not None:
            assert np.isfinite(shapes.sdf).all() and np.abs(shapes.points).max() <= 1
            assert np.isfinite(shapes.scales).all() and (shapes.scales > 0).all()


@FUZZ
@given(text=st.text(max_size=12))
def test_fuzz_size_flag(text):
    size = outcome(lambda: parse_size(text))
    if size is not None:
        assert all(1 <= s <= 16384 for s in size)
