"""Photographs at their own resolution: random-crop training, tiled whole-photo fit and render."""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from cli_helpers import assert_input_error, run_cli

from inr_gon.config import Config
from inr_gon.datasets import CropFolder
from inr_gon.inference.photo import encode_photo, output_size, photo_psnr, render_photo
from inr_gon.io import load_tensors, save_tensors
from inr_gon.limits import MAX_RENDER_SIDE
from inr_gon.models.tiles import TileLayout, axis_weights, render_tiles
from inr_gon.run import load_run
from inr_gon.training.streaming import crop_corners
from inr_gon.training.tasks import image_task


def _photos(folder, shapes=((40, 60), (50, 30), (20, 20))):
    """PNG photos of the given (H, W) with distinct pixels; returns them as floats in [0, 1]."""
    folder.mkdir()
    rng, out = np.random.default_rng(0), []
    for i, (h, w) in enumerate(shapes):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        iio.imwrite(folder / f"p{i}.png", img)
        out.append(img.astype(np.float32) / 255)
    return out


def _crop_cfg(folder, **fields):
    base = dict(data=str(folder), height=16, width=16, batch_size=4, crops=True, val_fraction=0,
                data_workers=0, steps=10, hidden=16, layers=2, latent_dim=4)
    return Config.of(**{**base, **fields})


def test_random_crops_are_a_function_of_seed_and_step_and_differ_across_steps(tmp_path):
    photos = _photos(tmp_path / "photos")
    cfg = _crop_cfg(tmp_path / "photos")
    task, again = image_task(cfg, torch.device("cpu")), image_task(cfg, torch.device("cpu"))
    assert isinstance(task.data, CropFolder) and task.data.in_memory
    b0, b1 = task.batch(0)[1], task.batch(1)[1]
    assert torch.equal(b0, again.batch(0)[1])  # what --resume replays
    assert not torch.equal(b0, b1)
    assert not torch.equal(crop_corners(cfg, 0), crop_corners(cfg, 1))
    # each item is a 16x16 window of its full-size photo (not the photo shrunk)
    for values in (b0, b1):
        for crop in values.reshape(-1, 16, 16, 3).numpy():
            assert any(_is_window(crop, p) for p in photos)


def _is_window(crop, photo):
    h, w = crop.shape[:2]
    return any(np.array_equal(crop, photo[y:y + h, x:x + w])
               for y in range(photo.shape[0] - h + 1) for x in range(photo.shape[1] - w + 1))


def test_crop_evaluation_is_fixed_and_streaming_draws_the_same_crops(tmp_path):
    _photos(tmp_path / "photos")
    cfg = _crop_cfg(tmp_path / "photos", val_fraction=0.34)
    task = image_task(cfg, torch.device("cpu"))
    first, second = task.values.evaluation(8), task.values.evaluation(8)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    streamed = image_task(cfg.replace(data_memory=0), torch.device("cpu"))  # nothing fits
    assert not streamed.data.in_memory
    assert torch.equal(task.batch(3)[1], streamed.batch(3)[1])


def test_crops_need_a_folder(tmp_path):
    from inr_gon.errors import InputError

    with pytest.raises(InputError, match="folder of photos"):
        image_task(_crop_cfg("builtin:shapes"), torch.device("cpu"))



def test_train_crops_from_the_command_line(tmp_path, capsys):
    """`train DIR --crops` trains on crops of the photos at their own size (the data summary
    says so); without it the same folder trains on the photos shrunk to --size."""
    import json

    _photos(tmp_path / "photos")
    flags = ["--size", "16", "--steps", "2", "--batch-size", "2", "--hidden", "8", "--layers", "2",
             "--latent-dim", "4", "--latent-grid", "0", "--origin-step", "gradient",
             "--data-workers", "0", "--preview-every", "0", "--device", "cpu", "--quiet"]
    for crops, out in ((["--crops"], "cropped"), ([], "shrunk")):
        code, _, err = run_cli(capsys, "train", tmp_path / "photos", *crops, *flags,
                               "--out", tmp_path / out)
        assert code == 0, err
    cropped, shrunk = (json.loads((tmp_path / r / "config.json").read_text())
                       for r in ("cropped", "shrunk"))
    assert cropped["crops"] and cropped["extra"]["data"].get("crops") is True
    assert not shrunk["crops"] and "crops" not in shrunk["extra"]["data"]

def test_blend_weights_are_a_partition_of_unity():
    layout = TileLayout.cover((100, 70), (16, 16), 4)
    assert layout.ys[0] == 0 and layout.ys[-1] == 100 - 16
    assert min(np.diff(layout.ys)) <= 12  # neighbours share at least the overlap
    u = (np.arange(500) + 0.5) / 5
    w = axis_weights(u, np.array(layout.ys), 16)
    assert np.allclose(w.sum(0), 1) and (w >= 0).all()
    assert (np.abs(np.diff(w, axis=1)) < 0.06).all()  # ramps of >= 4 px in 0.2 px steps: no jumps


def test_aligned_tiles_render_back_exactly_the_per_tile_encodes(make_run):
    r = load_run(make_run(height=8, width=8, latent_grid=2))
    photo = np.random.default_rng(1).random((16, 24, 3), dtype=np.float32)
    enc = encode_photo(r, photo, overlap=0)
    assert len(enc.layout) == 6  # 2 x 3 tiles, no overlap
    tiles = np.stack([photo[y:y + 8, x:x + 8] for y, x in enc.layout.corners()])
    assert torch.allclose(enc.z, r.encode(tiles), atol=1e-5)  # the affine step = the step
    rec = r.reconstruct(tiles)
    want = np.zeros_like(photo)
    for t, (y, x) in enumerate(enc.layout.corners()):
        want[y:y + 8, x:x + 8] = rec[t]
    got = render_photo(r, enc)
    assert np.allclose(got, want, atol=1e-5)
    assert abs(photo_psnr(got, photo) - photo_psnr(want, photo)) < 1e-3


def test_tiled_fit_of_a_photo_reproduces_it_on_a_briefly_trained_model(tmp_path):
    from inr_gon.training.train import train

    (tmp_path / "photos").mkdir()
    y, x = np.mgrid[0:48, 0:64] / 48
    smooth = np.stack([0.5 + 0.4 * np.sin(3 * x + 1), 0.5 + 0.4 * np.cos(2 * y),
                       0.5 + 0.3 * np.sin(2 * x + 3 * y)], -1)
    iio.imwrite(tmp_path / "photos" / "p.png", (smooth * 255).astype(np.uint8))
    photo = (smooth * 255).astype(np.uint8).astype(np.float32) / 255
    cfg = _crop_cfg(tmp_path / "photos", height=8, width=8, steps=100, batch_size=8, lr=3e-3,
                    hidden=32, latent_dim=8, latent_grid=2, log_every=50, preview_every=0,
                    checkpoint_every=0)
    train(cfg, tmp_path / "run", quiet=True)
    r = load_run(tmp_path / "run")
    score = photo_psnr(render_photo(r, encode_photo(r, photo)), photo)
    flat = photo_psnr(np.broadcast_to(photo.mean((0, 1)), photo.shape), photo)  # ~12.6 dB
    assert score > flat + 4, (score, flat)  # measured 18.7 dB: 48 tiles of 8x8, 100 steps


def test_non_square_photo_keeps_its_aspect(make_run, tmp_path, capsys):
    run = make_run(height=8, width=8)
    iio.imwrite(tmp_path / "wide.png", np.zeros((10, 30, 3), dtype=np.uint8))  # 30x10 (WxH)
    code, _, err = run_cli(capsys, "render", run, tmp_path / "wide.png", "--scale", "2",
                           "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert iio.imread(tmp_path / "out" / "wide.png").shape[:2] == (20, 60)
    assert output_size((10, 30), scale=1.5) == (15, 45)


@pytest.mark.parametrize("scale, words", [
    ("0", ("--scale", "positive")),
    ("-2", ("--scale", "positive")),
    ("nan", ("--scale", "positive")),
    ("0.001", ("1x1",)),
    (str(MAX_RENDER_SIDE), (str(MAX_RENDER_SIDE), "per side")),
    ("1000", ("memory budget",)),  # 12000x12000: each side within the limit, too many pixels
])
def test_bad_scales_exit_2_with_one_line_and_write_nothing(make_run, tmp_path, capsys, scale, words):
    run = make_run(height=8, width=8)
    iio.imwrite(tmp_path / "p.png", np.zeros((12, 12, 3), dtype=np.uint8))
    code, _, err = run_cli(capsys, "render", run, tmp_path / "p.png", "--scale", scale,
                           "--out", tmp_path / "out")
    assert_input_error(code, err, *words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("h, w", [(1, 1), (1, 40)])
def test_one_pixel_photos_are_refused(make_run, tmp_path, capsys, h, w):
    run = make_run(height=8, width=8)
    iio.imwrite(tmp_path / "p.png", np.zeros((h, w, 3), dtype=np.uint8))
    for cmd in (["render", run, tmp_path / "p.png", "--whole", "--out", tmp_path / "out"],
                ["fit", run, tmp_path / "p.png", "--whole"]):
        code, _, err = run_cli(capsys, *cmd)
        assert_input_error(code, err, "at least 2x2")
    assert not (tmp_path / "out").exists()


def test_empty_file_is_refused(make_run, tmp_path, capsys):
    run = make_run(height=8, width=8)
    (tmp_path / "p.png").write_bytes(b"")
    code, _, err = run_cli(capsys, "render", run, tmp_path / "p.png", "--scale", "2",
                           "--out", tmp_path / "out")
    assert_input_error(code, err, "p.png")
    assert not (tmp_path / "out").exists()


class _Counting(torch.nn.Module):
    """A decoder that records the most points it was given in one call."""

    def __init__(self, decoder):
        super().__init__()
        self.inner, self.out, self.most = decoder, decoder.out, 0

    def forward(self, coords, z):
        self.most = max(self.most, coords.shape[-2])
        return self.inner(coords, z)


def test_whole_photo_render_never_decodes_more_than_a_chunk(make_run):
    r = load_run(make_run(height=32, width=32, latent_grid=2))
    photo = np.random.default_rng(3).random((64, 96, 3), dtype=np.float32)
    enc = encode_photo(r, photo)
    counting = _Counting(r.decoder)
    img = render_tiles(counting, enc.layout, enc.z, 256, 384, enc.size, max_memory=1)
    assert counting.most == 1024  # points_per_chunk's floor, for a tile of 64x64 output points
    full = render_tiles(r.decoder, enc.layout, enc.z, 256, 384, enc.size)
    assert np.array_equal(img, full)


def test_fit_whole_latents_render_back_as_the_photos(make_run, tmp_path, capsys):
    """`fit --whole --out z` then `render --latents z` puts each photo back together: the same
    pixels as `render --whole` of the photo (at its size and at --scale 2), and a non-square
    photo keeps its size; a tampered record is one line, exit 2."""
    run = make_run(height=8, width=8)
    rng = np.random.default_rng(0)
    for name, hw in (("a", (20, 13)), ("b", (6, 9))):  # b: smaller than a tile in a side
        iio.imwrite(tmp_path / f"{name}.png", rng.integers(0, 255, (*hw, 3), dtype=np.uint8))
    photos = [tmp_path / "a.png", tmp_path / "b.png"]
    z = tmp_path / "z.safetensors"
    code, _, err = run_cli(capsys, "fit", run, *photos, "--whole", "--out", z)
    assert code == 0, err
    for extra in ([], ["--scale", "2"]):
        code, _, err = run_cli(capsys, "render", run, "--latents", z, *extra, "--out", tmp_path / "saved")
        assert code == 0, err
        code, _, err = run_cli(capsys, "render", run, *photos, "--whole", *extra, "--out",
                               tmp_path / "direct")
        assert code == 0, err
        for name, (h, w) in (("a", (20, 13)), ("b", (6, 9))):
            saved = iio.imread(tmp_path / "saved" / f"{name}.png")
            s = 2 if extra else 1
            assert saved.shape == (s * h, s * w, 3)
            assert np.abs(saved.astype(int) - iio.imread(tmp_path / "direct" / f"{name}.png")).max() <= 1
    tensors, meta = load_tensors(z)
    record = json.loads(meta["photos"])
    record[1]["first"] += 1
    save_tensors(z, tensors, {**meta, "photos": json.dumps(record)})
    code, _, err = run_cli(capsys, "render", run, "--latents", z, "--out", tmp_path / "bad")
    assert_input_error(code, err, "photos", "does not match")
