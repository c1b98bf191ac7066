"""Grouped config, flat names, old run folders, and the `train` options built from the fields:
--config FILE (JSON or TOML), --preset, --help with a doc and default per option, --version."""

import json

import pytest
from cli_helpers import assert_input_error, run_cli

from inr_gon.cli.options import flag_name, starting_config
from inr_gon.config import FIELDS, GROUPS, UNLIMITED_STEPS, Config
from inr_gon.errors import InputError
from inr_gon.models.factory import check_config
from inr_gon.presets import (
    COARSE_GRID,
    COMPILE_FROM_SECONDS,
    COMPILE_FROM_STEPS,
    FOLDER_DEFAULTS,
    HALF,
    LONG_FROM_STEPS,
    LONG_LR,
    PRESETS,
    VARIATIONAL_IMAGE,
)

TINY = ["--size", "8", "--batch-size", "4", "--hidden", "8", "--layers", "2", "--latent-dim", "4",
        "--preview-every", "0", "--checkpoint-every", "0", "--device", "cpu", "--quiet"]
# config.json as written before the groups (every field flat, extra beside them)
OLD_FLAT = {
    "data": "builtin:shapes", "modality": "image", "height": 16, "width": 12, "channels": 1,
    "val_fraction": 0.2, "model": "gon", "latent_dim": 8, "hidden": 32, "layers": 3, "w0": 10.0,
    "w0_hidden": 30.0, "latent_init": 5.0, "inner_steps": 2, "variational": True, "kl_weight": 1e-3,
    "detach_inner": False, "steps": 7, "batch_size": 4, "lr": 1e-3, "lr_min_ratio": 0.1, "seed": 3,
    "device": "cpu", "precision": "fp32", "points_per_signal": 0, "log_every": 1, "preview_every": 0,
    "checkpoint_every": 0, "sdf_points": 64, "sdf_clamp": 0.1, "sdf_samples": 1000,
    "sdf_noise": "0.01,0.05", "sdf_uniform": 0.5, "compile": False, "threads": 0,
    "data_memory": 1024, "data_workers": 0, "extra": {"version": "0.1.0", "data": {"count": 9}},
}


def read(run):
    return json.loads((run / "config.json").read_text())


def test_flat_names_route_to_their_groups():
    cfg = Config.of(hidden=64, lr=1e-3, sdf_points=9, data="builtin:shapes:8", channels=1)
    assert (cfg.net.hidden, cfg.train.lr, cfg.sdf.sdf_points) == (64, 1e-3, 9)
    assert (cfg.dataset.data, cfg.summary.channels) == ("builtin:shapes:8", 1)
    again = cfg.replace(layers=2, steps=5)
    assert (again.net.layers, again.train.steps, again.net.hidden) == (2, 5, 64)
    assert cfg.net.layers == 4  # replace copies
    with pytest.raises(InputError, match="bogus"):
        Config.of(bogus=1)


def test_old_flat_config_json_loads_and_is_written_flat_again():
    cfg = Config.from_dict(OLD_FLAT)
    assert (cfg.net.hidden, cfg.dataset.height, cfg.summary.channels, cfg.train.seed) == (32, 16, 1, 3)
    assert cfg.net.variational and cfg.sdf.sdf_noise == "0.01,0.05"
    # fields added since take the values the old run was trained with
    new = {"lr_min_ratio": 0.1, "modulation": "first", "latent_grid": 0, "origin_step": "gradient",
           "max_memory": 0, "tensorboard": False, "crops": False,
           "observe_scales": "1", "time_budget": "0", "local_base": "none",
           "local_pixels": False, "local_window": "quadratic", "image_loss": "mse",
           "warmup_steps": 0, "grad_clip": 0.0, "prior_length": 0.0}
    assert cfg.to_dict() == {**OLD_FLAT, **new}
    grouped = {g: {k: v for k, v in OLD_FLAT.items() if k in {f for f in vars(GROUPS[g]())}}
               for g in GROUPS}
    assert Config.from_dict({**grouped, "extra": OLD_FLAT["extra"]}) == cfg


def test_every_field_has_a_doc_and_validates_its_default():
    for name, f in FIELDS.items():
        assert f.metadata["help"], name
    Config().validate()
    for name in ("hidden", "lr", "val_fraction", "sdf_uniform"):
        with pytest.raises(InputError, match=f"'{name}' is out of range"):
            Config.of(**{name: -1}).validate()


def test_presets_are_valid_configs():
    for values in PRESETS.values():
        check_config(Config.of(**values))


def test_train_from_a_json_config_file_flags_override_it(tmp_path, capsys):
    (tmp_path / "my.json").write_text(json.dumps({"hidden": 12, "steps": 2, "lr": 0.003}))
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", "--config", tmp_path / "my.json",
                           *TINY[:4], "--layers", "2", "--latent-dim", "4", "--steps", "1",
                           "--out", tmp_path / "run", "--quiet", "--device", "cpu")
    assert code == 0, err
    raw = read(tmp_path / "run")
    assert (raw["hidden"], raw["lr"], raw["steps"], raw["height"]) == (12, 0.003, 1, 8)


def test_train_from_a_grouped_toml_file(tmp_path, capsys):
    (tmp_path / "my.toml").write_text('[net]\nhidden = 12\nlayers = 2\n[train]\nsteps = 1\nlr = 0.002\n')
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", "--config", tmp_path / "my.toml",
                           "--size", "8", "--batch-size", "4", "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    raw = read(tmp_path / "run")
    assert (raw["hidden"], raw["layers"], raw["steps"], raw["lr"]) == (12, 2, 1, 0.002)


def test_preset_then_file_then_flags(tmp_path, capsys):
    (tmp_path / "my.json").write_text(json.dumps({"train": {"steps": 2}, "net": {"hidden": 12}}))
    code, _, err = run_cli(capsys, "train", "--preset", "demo", "--config", tmp_path / "my.json",
                           *TINY, "--steps", "1", "--out", tmp_path / "run")
    assert code == 0, err
    raw = read(tmp_path / "run")
    demo = PRESETS["demo"]
    assert raw["data"] == demo["data"] and raw["w0"] == demo["w0"]  # from the preset
    assert raw["inner_steps"] == demo["inner_steps"]
    assert raw["hidden"] == 8 and raw["steps"] == 1  # flags beat the file, which beat the preset


@pytest.mark.parametrize("name,text,words", [
    ("unknown.json", '{"bogus": 1}', ("unknown.json", "'bogus' is unknown")),
    ("unknown-group.json", '{"net": {"lr": 1}}', ("'net.lr' is unknown",)),
    ("type.json", '{"hidden": "64"}', ("'hidden' has the wrong type",)),
    ("range.json", '{"hidden": 0}', ("'hidden' is out of range",)),
    ("broken.json", '{"hidden": ', ("not valid JSON",)),
    ("list.json", "[1, 2]", ("object",)),
    ("broken.toml", "[net\nhidden = 1", ("not valid TOML",)),
    ("type.toml", '[net]\nhidden = "wide"', ("'hidden' has the wrong type",)),
])
def test_bad_config_files_exit_2_with_one_line(tmp_path, capsys, name, text, words):
    (tmp_path / name).write_text(text)
    code, _, err = run_cli(capsys, "train", "builtin:shapes", "--config", tmp_path / name,
                           "--out", tmp_path / "run")
    assert_input_error(code, err, *words)
    assert not (tmp_path / "run").exists()


def test_missing_config_file_unknown_preset_and_no_data(tmp_path, capsys):
    assert_input_error(*run_cli(capsys, "train", "x", "--config", tmp_path / "nope.json")[::2],
                       "no such config file")
    assert_input_error(*run_cli(capsys, "train", "x", "--preset", "huge")[::2], "huge", "demo")
    assert_input_error(*run_cli(capsys, "train")[::2], "DATA")


def test_train_help_shows_every_option_with_a_doc_and_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "260")  # one row per option
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    lines = out.splitlines()
    for name, f in FIELDS.items():
        if not f.metadata["cli"]:
            continue
        row = " ".join(line for line in lines if f" {flag_name(name)} " in line)
        assert f.metadata["help"][:30] in row and "[default:" in row, (name, row)
    assert "--no-variational" in out and "<bool>" not in out
    assert "Example: inr-gon train" in out


@pytest.mark.parametrize("command", ["train", "render", "fit", "sample", "interpolate", "mesh",
                                     "eval", "export", "demo", "explore"])
def test_every_command_help_has_an_example(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and f"Example: inr-gon {command}" in out


def test_version(capsys):
    from inr_gon import __version__

    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"inr-gon {__version__}"

IMAGE_DEFAULTS = {**FOLDER_DEFAULTS["image"], "points_per_signal": 32 * 32 // 2}  # HALF at 32x32
assert FOLDER_DEFAULTS["image"]["points_per_signal"] == HALF


def test_folders_start_from_the_measured_defaults_and_presets_override_them(tmp_path):
    """An image folder starts from presets.FOLDER_DEFAULTS["image"] (quality.md), a mesh folder
    from ["sdf"]; built-in data keeps the field defaults; flags and presets win."""
    photos, meshes = tmp_path / "photos", tmp_path / "meshes"
    photos.mkdir(), meshes.mkdir()
    (photos / "a.png").write_bytes(b"")  # detection goes by extension; nothing is decoded here
    (meshes / "a.obj").write_text("")
    flat = starting_config(None, None, {"data": str(photos)}).flat()
    assert {k: flat[k] for k in IMAGE_DEFAULTS} == IMAGE_DEFAULTS
    flat = starting_config(None, None, {"data": str(meshes)}).flat()
    assert {k: flat[k] for k in FOLDER_DEFAULTS["sdf"]} == FOLDER_DEFAULTS["sdf"]
    vsdf = starting_config(None, None, {"data": str(meshes), "variational": True})
    assert (vsdf.net.origin_step, vsdf.train.lr) == ("gradient", FIELDS["lr"].default)  # no CG form
    assert starting_config(None, None, {"data": "builtin:shapes"}).net.latent_grid == 0
    paper = starting_config("paper", None, {"data": str(photos)}).net
    assert (paper.modulation, paper.latent_grid, paper.origin_step) == ("first", 0, "gradient")
    flags = starting_config(None, None, {"data": str(photos), "origin_step": "gradient"}).net
    assert (flags.origin_step, flags.latent_grid) == ("gradient", FOLDER_DEFAULTS["image"]["latent_grid"])
    tiny = starting_config(None, None, {"data": str(photos), "height": 4, "width": 4}).net
    assert tiny.latent_grid == 0  # no grid finer than 2 pixels a cell


def test_image_folders_compile_the_step_only_when_the_run_repays_it(tmp_path):
    """compile is an image folder default (docs/quality.md "Compiled") for runs long enough to
    repay the compile (presets.COMPILE_FROM_*); an explicit flag wins either way."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"")
    compiles = lambda **given: starting_config(None, None, {"data": str(photos), **given}).train.compile  # noqa: E731
    assert compiles() and compiles(steps=COMPILE_FROM_STEPS)
    assert compiles(steps=UNLIMITED_STEPS, time_budget="20m") and compiles(time_budget="1h")
    assert not compiles(steps=COMPILE_FROM_STEPS - 1) and not compiles(time_budget="90s")
    assert not compiles(steps=UNLIMITED_STEPS, time_budget=f"{COMPILE_FROM_SECONDS - 1}s")
    assert not compiles(compile=False)
    assert compiles(steps=50, compile=True)
    assert not starting_config(None, None, {"data": "builtin:shapes"}).train.compile


def test_image_folders_start_longer_schedules_at_a_lower_lr(tmp_path):
    """Schedules longer than 20 minutes or 12,000 steps start images at LONG_LR (two 60-minute
    runs at 3e-4 broke; docs/quality.md); shorter ones keep the measured 3e-4; a flag wins."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"")
    lr = lambda **given: starting_config(None, None, {"data": str(photos), **given}).train.lr  # noqa: E731
    short = FOLDER_DEFAULTS["image"]["lr"]
    assert lr() == lr(steps=LONG_FROM_STEPS) == lr(steps=UNLIMITED_STEPS, time_budget="20m") == short
    assert lr(steps=LONG_FROM_STEPS + 1) == lr(steps=UNLIMITED_STEPS, time_budget="1h") == LONG_LR
    assert lr(steps=UNLIMITED_STEPS, time_budget="1h", lr=3e-4) == 3e-4


def test_a_runs_config_json_reproduces_the_run(tmp_path, capsys):
    """`train --config RUN/config.json` trains the same run again: the fields train wrote from
    the data (extra, modality, channels) are ignored with a note, never an error."""
    first, again = tmp_path / "first", tmp_path / "again"
    code, _, err = run_cli(capsys, "train", "builtin:shapes:16", *TINY, "--steps", "3",
                           "--log-every", "1", "--seed", "5", "--out", first)
    assert code == 0, err
    assert "extra" in read(first) and read(first)["modality"] == "image"
    code, _, err = run_cli(capsys, "train", "--config", first / "config.json", "--out", again)
    assert code == 0, err
    assert "ignored" in err and "extra" in err and "modality" in err
    drop = lambda raw: {k: v for k, v in raw.items() if k != "extra"}  # noqa: E731
    assert drop(read(again)) == drop(read(first))
    losses = [[r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if "loss" in r] for run in (first, again)]
    assert len(losses[0]) == 3 and losses[0] == losses[1]  # the same steps, bit for bit



def test_an_image_array_starts_from_the_image_defaults_as_a_folder_does(tmp_path):
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "a.npy", np.zeros((4, 32, 32, 3), np.uint8))
    np.savez(tmp_path / "b.npz", np.zeros((4, 32, 32, 3), np.uint8))
    for array in ("a.npy", "b.npz"):
        flat = starting_config(None, None, {"data": str(tmp_path / array)}).flat()
        assert {k: flat[k] for k in IMAGE_DEFAULTS} == IMAGE_DEFAULTS


def test_images_draw_half_their_pixels_a_step_where_the_gon_encodes_whole_images(tmp_path):
    """points_per_signal: half the training size's pixels for the GON (measured at equal
    wall-clock, presets.py); whole images where the model or --observe-scales need them."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"")
    given = lambda **kw: starting_config(None, None, {"data": str(photos), **kw}).train  # noqa: E731
    assert given().points_per_signal == 32 * 32 // 2
    assert given(height=64, width=48).points_per_signal == 64 * 48 // 2
    assert given(points_per_signal=100).points_per_signal == 100  # a flag wins
    assert given(model="ae").points_per_signal == 0  # encodes whole images
    assert given(observe_scales="1,2").points_per_signal == 0  # views need whole images
    assert given().precision == "auto"


def test_the_kind_defaults_give_way_to_what_the_flags_ask_for(tmp_path):
    """The baselines take the gradient step; --variational keeps the image defaults (its
    Laplace form of the Gauss-Newton step); --model conv has no SIREN to modulate: each trains
    where the folder defaults alone would be refused."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"")
    given = lambda **kw: starting_config(None, None, {"data": str(photos), **kw}).net  # noqa: E731
    vgon = given(variational=True)
    assert (vgon.origin_step, vgon.modulation, vgon.latent_grid) == ("gauss-newton", "all", 8)
    assert vgon.latent_init == VARIATIONAL_IMAGE["latent_init"]  # the SIREN rule's scale
    assert vgon.prior_length == VARIATIONAL_IMAGE["prior_length"] > 0  # cells alike
    for flags in ({"latent_grid": 0}, {"origin_step": "gradient"}, {"height": 6, "width": 6}):
        assert given(variational=True, **flags).prior_length == 0  # no grid, or no Laplace step
    assert given(variational=True, prior_length=3.0).prior_length == 3.0
    ae = given(model="ae")
    assert ae.origin_step == "gradient" and (ae.latent_grid, ae.latent_dim) == tuple(COARSE_GRID.values())
    conv = given(model="conv")
    assert (conv.origin_step, conv.modulation, conv.latent_grid) == ("gradient", "first", 0)
    train = lambda **kw: starting_config(None, None, {"data": str(photos), **kw}).train  # noqa: E731
    assert train().lr == FOLDER_DEFAULTS["image"]["lr"]  # measured for the GON's step only
    assert train(model="ae").lr == FIELDS["lr"].default
    assert train(variational=True).lr == FOLDER_DEFAULTS["image"]["lr"]


def test_help_states_the_defaults_for_images_and_meshes(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = run_cli(capsys, "train", "--help")
    assert code == 0
    rows = {flag: " ".join(line for line in out.splitlines() if f" {flag} " in line)
            for flag in ("--modulation", "--latent-dim", "--latent-grid")}
    assert "images: all; meshes: all" in rows["--modulation"]
    assert "images: 16; meshes: 16" in rows["--latent-dim"]
    assert "images: 8x8; meshes: 6x6x6" in rows["--latent-grid"]
    assert "gauss-newton" in out.split("--origin-step", 1)[1].split("--", 1)[0].split("[default:")[1]
