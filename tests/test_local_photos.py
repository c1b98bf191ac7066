"""A local run's latents saved and rendered again (inference/superres.py, cli/photo.py): `fit
--whole` keeps each photo's tile codes for the factor they were encoded for, and `render
--latents` puts the photo back together; `fit --out` keeps code grids."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
from cli_helpers import assert_input_error, run_cli

from inr_gon.inference.latents import load_latent_photos
from inr_gon.io import load_tensors, save_tensors

LOCAL = dict(model="local", local_base="bicubic", local_pixels=True, observe_scales="2,3",
             height=12, width=12)


def photos(tmp_path) -> list:
    """Two photos: one of several tiles (TILE 32 + overlap) and one lower than a tile."""
    rng = np.random.default_rng(0)
    paths = [tmp_path / "big.png", tmp_path / "low.png"]
    iio.imwrite(paths[0], (rng.random((40, 37, 3)) * 255).astype(np.uint8))
    iio.imwrite(paths[1], (rng.random((12, 45, 3)) * 255).astype(np.uint8))
    return paths


@pytest.mark.parametrize("scale", [None, "2", "2.5"])
def test_fit_whole_codes_render_back_as_render_scale_does(make_run, tmp_path, capsys, scale):
    """The saved codes give the same pixels as super-resolving the photo itself, for a photo of
    several tiles and one smaller than a tile (its grids padded in the file), at a whole and a
    fractional factor."""
    run, ps, z = make_run(**LOCAL), photos(tmp_path), tmp_path / "z.safetensors"
    extra = ["--scale", scale] if scale else []
    code, out, err = run_cli(capsys, "fit", run, *ps, "--whole", *extra, "--out", z, "--json")
    assert code == 0, err
    s = float(scale or 3)  # default: the run's largest observe scale
    names, codes, recs = load_latent_photos(z, 4 + 3)
    assert [r.scale for r in recs] == [s, s] and codes.dim() == 4
    assert [r.tile for r in recs] == [(32, 32), (12, 32)] and codes.shape[1:3] == (32, 32)
    assert names[0] == "big@0,0" and len(names) == sum(r.count for r in recs)
    assert run_cli(capsys, "render", run, "--latents", z, "--out", tmp_path / "a", "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "render", run, *ps, "--scale", f"{s:g}", "--out", tmp_path / "b",
                           "--quiet")
    assert code == 0, err
    for p in ("big", "low"):
        a, b = iio.imread(tmp_path / "a" / f"{p}.png"), iio.imread(tmp_path / "b" / f"{p}.png")
        h, w = iio.imread(tmp_path / f"{p}.png").shape[:2]
        assert a.shape == (round(s * h), round(s * w), 3)
        assert np.array_equal(a, b)


def test_saved_codes_render_only_at_their_factor(make_run, tmp_path, capsys):
    run, z = make_run(**LOCAL), tmp_path / "z.safetensors"
    assert run_cli(capsys, "fit", run, *photos(tmp_path), "--whole", "--scale", "2", "--out", z,
                   "--quiet")[0] == 0
    assert run_cli(capsys, "render", run, "--latents", z, "--scale", "2", "--out", tmp_path / "ok",
                   "--quiet")[0] == 0
    for args in (["--scale", "3"], ["--size", "111x120"]):
        code, _, err = run_cli(capsys, "render", run, "--latents", z, *args, "--out", tmp_path / "o")
        assert_input_error(code, err, "encoded for 2x", "--scale 2")
    assert not (tmp_path / "o").exists()


def test_another_kind_of_runs_photo_latents_is_one_line(make_run, tmp_path, capsys):
    """A GON's tile latents into a local run and a local run's codes into a GON: exit 2."""
    local, gon = make_run("local", **LOCAL), make_run("gon", latent_dim=7)
    ps = photos(tmp_path)
    for run, name in ((local, "l"), (gon, "g")):
        assert run_cli(capsys, "fit", run, *ps, "--whole", "--out", tmp_path / f"{name}.safetensors",
                       "--quiet")[0] == 0
    for run, other in ((local, "g"), (gon, "l")):
        code, _, err = run_cli(capsys, "render", run, "--latents", tmp_path / f"{other}.safetensors",
                               "--out", tmp_path / "o")
        assert code == 2 and "Traceback" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("model, args, words", [
    ("local", ["--scale", "2"], ["--scale", "--whole"]),  # --scale without --whole
    ("gon", ["--whole", "--scale", "2"], ["--scale", "local run"]),
    ("local", ["--whole", "--scale", "0"], ["factor 1 to 16"]),
    ("local", ["--whole", "--scale", "0.5"], ["factor 1 to 16"]),
    ("local", ["--whole", "--scale", "nan"], ["factor 1 to 16"]),
    ("local", ["--whole", "--scale", "inf"], ["factor 1 to 16"]),
    ("local", ["--whole", "--refine-steps", "2"], ["local run", "--refine-steps"]),
])
def test_bad_fit_whole_of_a_local_run_is_one_line(make_run, tmp_path, capsys, model, args, words):
    run = make_run(**(LOCAL if model == "local" else {}))
    code, _, err = run_cli(capsys, "fit", run, *photos(tmp_path)[:1], *args, "--out",
                           tmp_path / "z.safetensors")
    assert_input_error(code, err, *words)
    assert not (tmp_path / "z.safetensors").exists()


def test_fit_out_of_a_local_run_keeps_code_grids_that_render_again(make_run, tmp_path, capsys):
    """Its fit scores the training size's view at the largest observe scale (12 / 3 = 4 px),
    super-resolved back; the codes of that view render at the training size."""
    run, z = make_run(**LOCAL), tmp_path / "z.safetensors"
    iio.imwrite(tmp_path / "a.png", np.zeros((8, 8, 3), dtype=np.uint8))
    assert run_cli(capsys, "fit", run, tmp_path / "a.png", "--out", z, "--quiet")[0] == 0
    names, codes, recs = load_latent_photos(z, 4 + 3)
    assert codes.shape == (1, 4, 4, 7) and recs is None
    code, _, err = run_cli(capsys, "render", run, "--latents", z, "--out", tmp_path / "o", "--quiet")
    assert code == 0, err
    assert iio.imread(tmp_path / "o" / "a.png").shape == (12, 12, 3)


def test_whole_photo_commands_read_the_images_of_an_array(make_run, tmp_path, capsys):
    """`render --scale` and `fit --whole` take a .npy stack as `render` and `train` do: each
    image a photo, named as their items are (STEM_000000, ...)."""
    stack = (np.random.default_rng(1).random((3, 12, 10, 3)) * 255).astype(np.uint8)
    np.save(tmp_path / "t.npy", stack)
    iio.imwrite(tmp_path / "one.png", stack[1])
    local, gon = make_run("local", **LOCAL), make_run("gon")
    for run in (local, gon):
        out = tmp_path / f"o_{run.name}"
        code, _, err = run_cli(capsys, "render", run, tmp_path / "t.npy", tmp_path / "one.png",
                               "--scale", "2", "--out", out, "--quiet")
        assert code == 0, err
        names = sorted(p.name for p in out.glob("*.png"))
        assert names == ["one.png", "t_000000.png", "t_000001.png", "t_000002.png"]
        assert iio.imread(out / "t_000002.png").shape == (24, 20, 3)
        # the array's image and the same pixels from a file: one render
        assert np.array_equal(iio.imread(out / "t_000001.png"), iio.imread(out / "one.png"))
    code, out, err = run_cli(capsys, "fit", local, tmp_path / "t.npy", "--whole", "--json")
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)["items"]] == ["t_000000", "t_000001", "t_000002"]


def test_an_array_of_one_pixel_photos_is_one_line(make_run, tmp_path, capsys):
    np.save(tmp_path / "t.npy", np.zeros((2, 1, 5, 3), dtype=np.uint8))
    code, _, err = run_cli(capsys, "render", make_run(**LOCAL), tmp_path / "t.npy", "--scale", "2",
                           "--out", tmp_path / "o")
    assert_input_error(code, err, "t.npy[0]", "at least 2x2")
    assert not (tmp_path / "o").exists()


def test_a_photos_record_that_does_not_fit_its_codes_is_one_line(make_run, tmp_path, capsys):
    """Tiles larger than the file's code grids, or a local record over [T, D] latents."""
    run, z = make_run(**LOCAL), tmp_path / "z.safetensors"
    assert run_cli(capsys, "fit", run, *photos(tmp_path), "--whole", "--out", z, "--quiet")[0] == 0
    tensors, meta = load_tensors(z)
    codes = tensors["latents"]
    for bad in (codes[:, :8, :8], codes[:, 0, 0]):  # grids smaller than the tiles; [T, D]
        save_tensors(tmp_path / "bad.safetensors", {"latents": bad.contiguous()}, meta)
        code, _, err = run_cli(capsys, "render", run, "--latents", tmp_path / "bad.safetensors",
                               "--out", tmp_path / "o")
        assert_input_error(code, err, "'photos' record does not match")
    assert not (tmp_path / "o").exists()
