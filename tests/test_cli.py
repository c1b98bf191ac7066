"""The command line: exit codes, one-line errors, and the train -> render path."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import assert_input_error, cli_exit, run_cli

TINY = ["--size", "8", "--steps", "4", "--batch-size", "4", "--hidden", "16", "--layers", "2",
        "--latent-dim", "4", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli_exit("train", "builtin:shapes", "--out", out, *TINY) == 0
    return out


def test_render_training_items_at_any_size(tiny_run, capsys, tmp_path):
    code, out, err = run_cli(capsys, "render", tiny_run, "--size", "13x21", "-n", "3",
                             "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    pngs = sorted(p.name for p in (tmp_path / "r").glob("*.png"))
    assert len(pngs) == 4 and "grid.png" in pngs
    import imageio.v3 as iio

    img = iio.imread(tmp_path / "r" / [p for p in pngs if p != "grid.png"][0])
    assert img.shape == (21, 13, 3)  # --size is width x height


def test_render_new_image_warns_about_resampling(tiny_run, capsys, tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "new.png", (np.random.rand(20, 30, 3) * 255).astype(np.uint8))
    code, out, err = run_cli(capsys, "render", tiny_run, tmp_path / "new.png", "--size", "16",
                             "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    assert "resampled" in err and (tmp_path / "r" / "new.png").is_file()



def test_render_and_fit_read_arrays_and_warn_only_when_resampling(tiny_run, capsys, tmp_path):
    """render and fit take .npy/.npz arrays as train and eval do; inputs already at the run's
    8x8 (a folder or an array) are not said to be resampled; other sizes are."""
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    np.save(tmp_path / "t.npy", rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8))
    np.savez(tmp_path / "big.npz", rng.integers(0, 256, (2, 12, 12, 3), dtype=np.uint8))
    (tmp_path / "same").mkdir()
    for i in range(2):
        iio.imwrite(tmp_path / "same" / f"a{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    code, _, err = run_cli(capsys, "render", tiny_run, tmp_path / "t.npy", tmp_path / "same",
                           "--out", tmp_path / "r", "--quiet")
    assert code == 0 and "resampled" not in err, err
    assert {p.name for p in (tmp_path / "r").glob("*.png")} == {
        "t_000000.png", "t_000001.png", "t_000002.png", "a0.png", "a1.png", "grid.png"}
    code, out, err = run_cli(capsys, "fit", tiny_run, tmp_path / "big.npz", "--json")
    assert code == 0, err
    assert "12x12 resampled to 8x8" in err and len(json.loads(out)["items"]) == 2

def test_missing_data_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", tmp_path / "nope", "--out", tmp_path / "o", *TINY)
    assert_input_error(code, err)
    assert not (tmp_path / "o").exists()


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "train", tmp_path / "empty", "--out", tmp_path / "o", *TINY)
    assert_input_error(code, err)


def test_folder_of_unreadable_files(capsys, tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    for i in range(3):
        (d / f"x{i}.png").write_bytes(b"not a png at all")
    code, _, err = run_cli(capsys, "train", d, "--out", tmp_path / "o", *TINY)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in err


def test_unknown_builtin_lists_known(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "builtin:nope", "--out", tmp_path / "o", *TINY)
    assert_input_error(code, err, "shapes")


@pytest.mark.parametrize("size", ["0", "-3", "4x0", "big", "100000"])
def test_bad_size(capsys, tmp_path, size):
    args = ["train", "builtin:shapes", "--out", tmp_path / "o", *TINY, "--size", size]
    code, _, err = run_cli(capsys, *args)
    assert_input_error(code, err, "--size")


def test_render_of_a_folder_that_is_not_a_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "render", tmp_path)
    assert_input_error(code, err, "not a run")
    code, _, err = run_cli(capsys, "render", tmp_path / "missing")
    assert_input_error(code, err)


def test_unavailable_device(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "builtin:shapes", "--out", tmp_path / "o", *TINY,
                           "--device", "cuda:99")
    assert_input_error(code, err, "cuda")


def test_python_m_entry_point(tmp_path):
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    p = subprocess.run([sys.executable, "-m", "inr_gon", "render", str(tmp_path)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "inr_gon", "--help"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert p.returncode == 0 and "train" in p.stdout and "render" in p.stdout


@pytest.mark.parametrize("argv,words", [
    (["train", "builtin:shapes:8", "--bogus"], ("No such option: --bogus", "inr-gon train --help")),
    (["render"], ("Missing argument", "inr-gon render --help")),
    (["fit", "x", "y", "--refine-steps", "many"], ("--refine-steps", "inr-gon fit --help")),
    (["bogus"], ("No such command 'bogus'",)),
])
def test_a_usage_mistake_is_one_error_line_exit_2(capsys, argv, words):
    """Not Typer's usage box: the one `error:` line the README promises, naming --help."""
    code, out, err = run_cli(capsys, *argv)
    assert_input_error(code, err, *words)
    assert "╭" not in err + out and "Usage:" not in err


def test_help_prints_the_tensorboard_extra_whole(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one row per option
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0 and 'pip install "inr-gon[tensorboard]"' in out


def test_every_option_is_a_declared_field_with_one_flag_and_default():
    """Every option of every command comes from one table (cli/shared.py's fields, and train's
    config fields): the same flag, and the same default except where a command sets its own
    (listed here); every command that opens a run takes --device and --quiet."""
    import typer.main

    from inr_gon.cli.app import app
    from inr_gon.cli.shared import SHARED, SHORT
    from inr_gon.config import FIELDS

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    flags = {flag(name): f for name, f in SHARED.items() if name != "run"}
    own_default = {("sample", "--count"), ("mesh", "--resolution"), ("mesh", "--refine-lr")}
    seen = set()
    for name, cmd in typer.main.get_command(app).commands.items():
        options = [p for p in cmd.params if p.param_type_name == "option"]
        for p in options:
            long = next(o for o in p.opts if o.startswith("--"))
            assert long in flags or long in {flag(f) for f in FIELDS} or long == "--help", (name, long)
            if long in flags and not (name == "train" and long in {flag(f) for f in FIELDS}):
                assert set(p.opts) == {long, *[v for k, v in SHORT.items() if flag(k) == long]}, p.opts
                if (name, long) not in own_default:
                    assert p.default == flags[long].default, (name, long)
                seen.add(long)
        if "run" in {p.name for p in cmd.params}:
            assert {"--device", "--quiet"} <= {o for p in options for o in p.opts}, name
    assert seen == set(flags)


def test_a_command_loads_only_its_own_module(tmp_path):
    """`inr-gon explore` (and render --backend onnx) start without the `onnx` package, which
    only building graphs needs; `--help` still lists every command."""
    probe = ("import sys; from inr_gon.cli.app import register; register(sys.argv[1:]); "
             "print(sorted(m for m in sys.modules if m.startswith('inr_gon.cli.')), 'onnx' in sys.modules)")
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    p = subprocess.run([sys.executable, "-c", probe, "explore", "RUN"], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    assert "'inr_gon.cli.explore'" in p.stdout and "'inr_gon.cli.export'" not in p.stdout
    assert p.stdout.strip().endswith("False")  # no onnx
    p = subprocess.run([sys.executable, "-m", "inr_gon", "explore", "--help"], capture_output=True,
                       text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0 and "--backend" in p.stdout
    p = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert "'inr_gon.cli.export'" in p.stdout and "'inr_gon.cli.train'" in p.stdout
