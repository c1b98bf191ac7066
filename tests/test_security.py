"""Nobody gets in: no pickle on any loading path, every config field validated, and nothing
written outside the folder the user named."""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import math
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from cli_helpers import cli_exit, one_error_line, run_cli
from figures import record

from inr_gon.config import FIELDS, MODEL_FIELDS, Config
from inr_gon.errors import InputError
from inr_gon.inference.latents import save_latents
from inr_gon.run import load_run

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("inr_gon", "cli", "datasets", "export") for p in sorted((ROOT / d).rglob("*.py"))]
TINY = ["--size", "8", "--steps", "3", "--batch-size", "4", "--hidden", "16", "--layers", "2",
        "--latent-dim", "4", "--preview-every", "0", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sec") / "run"
    assert cli_exit("train", "builtin:shapes:16", "--out", out, *TINY) == 0
    return out


def copy_run(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


# ---- no pickle ------------------------------------------------------------------------------

class Payload:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def pickle_files(folder: Path, marker: Path) -> dict[str, Path]:
    """Pickle-based files that would run the payload if anything unpickled them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"raw": folder / "payload.pkl", "torch": folder / "payload.pt",
             "npy": folder / "payload.npy", "npz": folder / "payload.npz"}
    files["raw"].write_bytes(pickle.dumps({"w": Payload(marker)}))
    torch.save({"decoder.out.weight": Payload(marker)}, files["torch"])
    np.save(files["npy"], np.array([Payload(marker)], dtype=object), allow_pickle=True)
    np.savez(files["npz"], images=np.array([Payload(marker)], dtype=object))
    return files


def test_the_payloads_are_live(tmp_path):
    """The planted files really execute code when unpickled, so the tests below mean something."""
    marker = tmp_path / "proof"
    files = pickle_files(tmp_path / "p", marker)
    pickle.loads(files["raw"].read_bytes())
    assert marker.exists()
    marker.unlink()
    torch.load(files["torch"], weights_only=False)
    assert marker.exists()
    marker.unlink()
    np.load(files["npy"], allow_pickle=True)
    assert marker.exists()


def test_planted_pickles_are_refused_or_ignored_never_run(run_dir, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = pickle_files(tmp_path / "evil", marker)
    run = copy_run(run_dir, tmp_path)
    beside = ("model.pt", "model.pth", "model.ckpt", "train_state.pt", "checkpoint.pt", "model.bin",
              "model.pkl")
    assert len(beside) == 7
    for name in beside:  # beside the real files: ignored
        shutil.copy(evil["torch"], run / name)
    code, _, err = run_cli(capsys, "render", run, "--out", tmp_path / "r1", "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "x", "--resume", "--steps", "4", "--out", run, "--quiet")
    assert code == 0, err
    outcomes = {"beside the run files": "ignored"}
    cases = [  # instead of the real files, or handed over as data and latents: refused
        ("model.safetensors", evil["torch"], ["render", run, "--out", tmp_path / "r2"]),
        ("model.safetensors", evil["raw"], ["render", run, "--out", tmp_path / "r3"]),
        ("train_state.safetensors", evil["torch"], ["train", "x", "--resume", "--out", run]),
        (None, evil["npy"], ["train", evil["npy"], "--out", tmp_path / "t1", *TINY]),
        (None, evil["npz"], ["train", evil["npz"], "--out", tmp_path / "t2", *TINY]),
        (None, evil["torch"], ["render", run, "--latents", evil["torch"], "--out", tmp_path / "r4"]),
        (None, evil["raw"], ["render", run, "--latents", evil["raw"], "--out", tmp_path / "r5"]),
    ]
    for i, (target, payload, argv) in enumerate(cases):
        if target:
            fresh = copy_run(run_dir, tmp_path / f"case{i}")
            shutil.copy(payload, fresh / target)
            argv = [fresh if a is run else a for a in argv]
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, (target, payload, err)
        one_error_line(err)
        outcomes[f"{payload.name} as {target or argv[0]}"] = "refused"
    api = copy_run(run_dir, tmp_path / "api")
    shutil.copy(evil["torch"], api / "model.safetensors")
    with pytest.raises(InputError, match="safetensors"):
        load_run(api)
    assert not marker.exists()
    record("pickle", planted=7 + len(cases) + 1, refused=len(cases) + 1, ignored=7, executed=0,
           outcomes=outcomes)


def test_no_unpickling_call_on_any_loading_path(run_dir, tmp_path, capsys, monkeypatch):
    """Every loader runs with pickle and torch.load booby-trapped."""
    def trap(*args, **kwargs):
        raise AssertionError("something unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, trap)
    monkeypatch.setattr(torch, "load", trap)
    run = copy_run(run_dir, tmp_path)
    np.save(tmp_path / "a.npy", np.zeros((2, 8, 8), np.uint8))
    np.savez(tmp_path / "b.npz", images=np.zeros((2, 8, 8, 3), np.float32))
    z = load_run(run).encode(np.zeros((2, 8, 8, 3), np.float32))
    save_latents(tmp_path / "z.safetensors", ["a", "b"], z)
    for argv in (["render", run, "--out", tmp_path / "r", "--quiet"],
                 ["render", run, "--latents", tmp_path / "z.safetensors", "--out", tmp_path / "r"],
                 ["train", "x", "--resume", "--steps", "4", "--out", run],
                 ["train", tmp_path / "a.npy", "--out", tmp_path / "t1", *TINY],
                 ["train", tmp_path / "b.npz", "--out", tmp_path / "t2", *TINY]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_the_sources_never_unpickle():
    """A static guard for code added later: no pickle-family imports, no torch.load, np.load
    only with allow_pickle=False, no eval/exec."""
    banned_modules = {"pickle", "cPickle", "_pickle", "dill", "joblib", "shelve", "marshal",
                      "cloudpickle"}
    banned_calls = {"torch.load", "torch.jit.load", "yaml.load", "yaml.unsafe_load", "eval", "exec",
                    "pd.read_pickle", "pandas.read_pickle", "__import__"}
    problems = []
    assert len(SOURCES) > 20
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{where}: import {a.name}" for a in node.names
                             if a.name.split(".")[0] in banned_modules]
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in banned_modules or \
                        any(a.name == "load" for a in node.names) and node.module in ("torch", "numpy"):
                    problems.append(f"{where}: from {node.module} import ...")
        for call, name in _calls(tree):
            if name in banned_calls:
                problems.append(f"{where}:{call.lineno}: {name}(...)")
            if name in ("np.load", "numpy.load"):
                safe = any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant)
                           and k.value.value is False for k in call.keywords)
                if not safe:
                    problems.append(f"{where}:{call.lineno}: {name} without allow_pickle=False")
    assert problems == []


# ---- config.json: every field validated -------------------------------------------------------

def bad_values(f: dataclasses.Field) -> list:
    """A wrong type, and for numbers and strings out-of-range values, for one field."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    wrong = {"int": "1", "float": "1.0", "bool": 1, "str": 1}.get(kind, [])
    out = {"int": [-10**12, 10**30], "float": [-1e30, math.inf, math.nan],
           "str": ["", "\x00"]}.get(kind, [])
    return [wrong, *out]


FIELD_CASES = [(name, v) for name, f in FIELDS.items() for v in bad_values(f)]  # every leaf field
FIELD_CASES.append(("extra", []))  # the bookkeeping dict beside the groups


@pytest.mark.parametrize("name,value", FIELD_CASES, ids=[f"{n}={v!r}" for n, v in FIELD_CASES])
def test_every_config_field_is_validated(name, value):
    with pytest.raises(InputError, match=f"'{name}'"):
        Config.from_dict({**Config().to_dict(), name: value})


@pytest.mark.parametrize("name", MODEL_FIELDS)
def test_a_run_config_must_state_its_model_fields(run_dir, tmp_path, capsys, name):
    run = copy_run(run_dir, tmp_path)
    raw = json.loads((run / "config.json").read_text())
    del raw[name]
    (run / "config.json").write_text(json.dumps(raw))
    code, _, err = run_cli(capsys, "render", run, "--out", tmp_path / "r")
    line = one_error_line(err)
    assert code == 2 and f"'{name}' is missing" in line and "config.json" in line


EDITS = {
    "unknown key": ({"hidden_size": 16}, "'hidden_size' is unknown"),
    "wrong type": ({"hidden": "16"}, "'hidden' has the wrong type"),
    "bool as int": ({"variational": 0}, "'variational'"),
    "out of range": ({"layers": 0}, "'layers' is out of range"),
    "NaN": ({"w0": math.nan}, "'w0'"),
    "Infinity": ({"lr": math.inf}, "'lr'"),
    "huge model": ({"hidden": 8192, "layers": 64}, "'hidden' and 'layers'"),
    "bad device": ({"device": "tpu:0"}, "'device'"),
    "NUL in data": ({"data": "a\x00b"}, "'data'"),
    "extra not a dict": ({"extra": [1]}, "'extra'"),
    "extra.version": ({"extra": {"version": 1}}, "'extra.version'"),
    "extra.data": ({"extra": {"data": "x"}}, "'extra.data'"),
    "shape edit": ({"hidden": 32}, "shape"),  # valid config, weights of another model
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_hand_edited_config_is_one_line_naming_the_field(run_dir, tmp_path, capsys, edit):
    changes, words = EDITS[edit]
    run = copy_run(run_dir, tmp_path)
    raw = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**raw, **changes}))
    code, _, err = run_cli(capsys, "render", run, "--out", tmp_path / "r")
    assert code == 2 and words in one_error_line(err)


# ---- paths ---------------------------------------------------------------------------------------

HOSTILE_NAMES = ["../../escape", "/tmp/inr-gon-absolute", "..", ".", "a/b/../c", "", ".hidden",
                 "line\nbreak", "x" * 300, "\udcff-undecodable", "c:\\windows"]
PATHS_SCRIPT = """
import json, sys
from inr_gon.cli.app import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit as e:
        print("EXIT", e.code, flush=True)
"""


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_nothing_is_written_outside_out(tmp_path):
    """train, render, render --latents with hostile item names, fit --out, eval, sample and
    interpolate --out, in a fresh process whose HOME, TMPDIR and working folder are empty
    folders we watch: folders given as --out get their files, file paths exactly that file."""
    home, work, tmp, box = (tmp_path / n for n in ("home", "work", "tmp", "box/a/b"))
    for d in (home, work, tmp, box):
        d.mkdir(parents=True)
    run, renders, named, samples = box / "run", box / "renders", box / "named", box / "samples"
    fitted, walk = box / "fit" / "z.safetensors", box / "walk" / "w.gif"
    z = torch.zeros(len(HOSTILE_NAMES), 4)
    save_latents(box / "z.safetensors", HOSTILE_NAMES, z)
    a, b = str(box / "grid.png"), str(box / "b.png")  # 'grid': the name render keeps for its sheet
    for path in (a, b):
        iio.imwrite(path, np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    before = files_under(tmp_path)
    argvs = [["train", "builtin:shapes:16", "--out", str(run), *TINY],
             ["render", str(run), "--out", str(renders), "--quiet"],
             ["render", str(run), "--latents", str(box / "z.safetensors"), "--out", str(named),
              "--quiet"],
             ["fit", str(run), a, b, "--refine-steps", "1", "--out", str(fitted), "--quiet"],
             ["eval", str(run), a, "--quiet"],
             ["sample", str(run), "-n", "3", "--out", str(samples), "--quiet"],
             ["interpolate", str(run), a, b, "--frames", "3", "--out", str(walk), "--quiet"],
             ["render", str(run), "--latents", str(fitted), "--out", str(renders), "--quiet"]]
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "PYTHONSAFEPATH": "1",
           "XDG_CACHE_HOME": str(home / ".cache"), "MPLCONFIGDIR": str(home / ".mpl")}
    p = subprocess.run([sys.executable, "-c", PATHS_SCRIPT, json.dumps(argvs)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert [x for x in p.stdout.splitlines() if x.startswith("EXIT")] == ["EXIT 0"] * len(argvs), p.stderr
    new = files_under(tmp_path) - before
    outside = [p for p in new if not any(p.is_relative_to(d) for d in (run, renders, named, samples))
               and p not in (fitted, walk)]
    assert outside == [] and not Path("/tmp/inr-gon-absolute.png").exists()
    assert {p.name for p in samples.iterdir()} == {"grid.png", "latents.safetensors",
                                                   *(f"sample_{i:04d}.png" for i in range(3))}
    assert {"grid-1.png", "b.png"} <= {p.name for p in renders.iterdir()}  # fitted 'grid' kept apart
    written = sorted(p.name for p in named.iterdir())
    assert len(written) == len(HOSTILE_NAMES) + 1 and "grid.png" in written  # one file per item
    assert all(p.parent == named for p in named.iterdir())
    record("paths", commands=len(argvs), hostile_names=len(HOSTILE_NAMES), files_written=len(new),
           written_outside_out=len(outside))


def test_demo_writes_only_into_out(tmp_path, capsys, monkeypatch):
    from inr_gon.cli import demo as demo_command
    from inr_gon.demos import images as demo

    small = Config.of(data="builtin:shapes:16", height=8, width=8, hidden=16, layers=2, latent_dim=4,
                      steps=3, batch_size=4, preview_every=0, checkpoint_every=0, device="cpu")
    # the command holds run_demo itself (a module-level import): patch it there
    monkeypatch.setattr(demo_command, "run_demo", functools.partial(demo.run_demo, cfg=small))
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "demo", "--out", tmp_path / "d" / "run", "--quiet")
    assert code == 0, err
    assert all(p.is_relative_to(tmp_path / "d" / "run") for p in files_under(tmp_path))


def test_an_npz_member_name_cannot_point_elsewhere(tmp_path, capsys):
    """Zip member names are never used as paths: an npz with '../x' members only reads."""
    with zipfile.ZipFile(tmp_path / "a.npz", "w") as zf:
        with zf.open("../../images.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros((2, 8, 8), np.uint8))
    code, _, err = run_cli(capsys, "train", tmp_path / "a.npz", "--out", tmp_path / "o", *TINY)
    assert code == 0, err
    assert not (tmp_path.parent.parent / "images.npy").exists()


def test_the_hostile_rows_guards_are_live(tmp_path):
    """tests/guards.py, which every hostile-input row runs under, does catch a connection
    attempt and a read under the forbidden folder (else its silence would prove nothing)."""
    import contextlib
    import urllib.request

    import guards

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.bin").write_bytes(b"x")
    with pytest.raises(AssertionError, match="network access"), guards.watch(tmp_path / "outside"):
        with contextlib.suppress(OSError):
            urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
    with pytest.raises(AssertionError, match="opened outside"), guards.watch(tmp_path / "outside"):
        os.close(os.open(tmp_path / "outside" / "secret.bin", os.O_RDONLY))
    with guards.watch(tmp_path / "outside"):
        (tmp_path / "inside.bin").write_bytes((tmp_path / "outside").name.encode())
