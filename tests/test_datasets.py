"""Image data layer: decoding policies, resize, arrays, errors and built-ins."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from inr_gon.datasets import (
    BUILTINS,
    ImageSet,
    detect_modality,
    load_image_file,
    load_images,
    register_builtin,
    resize_image,
)
from inr_gon.datasets import builtin as builtin_mod
from inr_gon.datasets.png16 import decode_png16
from inr_gon.errors import InputError

RNG = np.random.default_rng(0)


def _save(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def _rgb(h=6, w=6, colour=(255, 0, 0)):
    return np.tile(np.array(colour, np.uint8), (h, w, 1))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png16(arr: np.ndarray, interlace: bool = False, trns: bytes | None = None) -> bytes:
    """A 16-bit PNG encoder using every filter type in turn (rows cycle through 0-4)."""
    h, w, c = arr.shape
    bpp = 2 * c

    def rows(sub: np.ndarray) -> bytes:
        b = np.frombuffer(sub.astype(">u2").tobytes(), np.uint8).reshape(sub.shape[0], -1)
        b, out, prev = b.astype(np.int64), [], np.zeros(b.shape[1], np.int64)
        for r, x in enumerate(b):
            a = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
            cc = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
            p = a + prev - cc
            pa, pb, pc = abs(p - a), abs(p - prev), abs(p - cc)
            paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, prev, cc))
            pred = [0, a, prev, (a + prev) // 2, paeth][r % 5]
            out.append(bytes([r % 5]) + ((x - pred) & 255).astype(np.uint8).tobytes())
            prev = x
        return b"".join(out)

    if interlace:
        passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
                  (0, 1, 2, 2), (1, 0, 2, 1)]
        raw = b"".join(rows(arr[r0::dr, c0::dc]) for r0, c0, dr, dc in passes
                       if arr[r0::dr, c0::dc].size)
    else:
        raw = rows(arr)
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 16, ctype, 0, 0, int(interlace))
    extra = _chunk(b"tRNS", trns) if trns else b""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


# ---- folders and decoding policies -------------------------------------------------

def test_folder_recursive_sorted_and_filtered(tmp_path):
    _save(tmp_path / "b.png", _rgb())
    _save(tmp_path / "A" / "z.JPG", _rgb(), quality=95)
    _save(tmp_path / "A" / "deep" / "c.webp", _rgb(), lossless=True)
    _save(tmp_path / "d.BMP", _rgb())
    _save(tmp_path / ".hidden" / "e.png", _rgb())  # hidden folders are skipped
    _save(tmp_path / "._f.png", _rgb())  # macOS metadata file
    (tmp_path / "notes.txt").write_text("not an image")
    s = load_images(tmp_path)
    assert s.names == ["A/deep/c.webp", "A/z.JPG", "b.png", "d.BMP"]
    assert s.images.shape == (4, 6, 6, 3) and s.images.dtype == np.float32
    assert np.allclose(s.images, [1, 0, 0], atol=0.02)
    assert json.loads(json.dumps(s.summary()))["count"] == 4
    assert s.summary()["kind"] == "folder" and s.true_render is None


def test_grey_stays_grey_and_mixed_becomes_rgb(tmp_path):
    grey = (RNG.random((5, 7)) * 255).astype(np.uint8)
    _save(tmp_path / "g1.png", grey)
    _save(tmp_path / "g2.png", np.asarray(Image.fromarray(grey).convert("1")))
    s = load_images(tmp_path)
    assert s.images.shape == (2, 5, 7, 1)
    assert np.allclose(s.images[0, ..., 0], grey / 255)
    assert set(np.unique(s.images[1])) <= {0.0, 1.0}
    _save(tmp_path / "c.png", _rgb(5, 7, (10, 20, 30)))
    s = load_images(tmp_path)
    assert s.images.shape == (3, 5, 7, 3)
    assert np.allclose(s.images[1], (grey / 255)[..., None].repeat(3, -1))  # g1, repeated


def test_alpha_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = [[0, 255], [51, 255]]
    out = load_image_file(_save(tmp_path / "a.png", rgba))
    assert np.allclose(out[0, 0], 1) and np.allclose(out[0, 1], [1, 0, 0])
    assert np.allclose(out[1, 0], [1, 0.8, 0.8])
    la = np.stack([np.zeros((2, 2), np.uint8), np.full((2, 2), 0, np.uint8)], -1)
    la[0, 0, 1] = 255
    out = load_image_file(_save(tmp_path / "la.png", la))
    assert out.shape == (2, 2, 1) and out[0, 0, 0] == 0 and out[1, 1, 0] == 1


def test_palette_images(tmp_path):
    idx = np.array([[0, 1], [2, 1]], np.uint8)
    im = Image.fromarray(idx, mode="P")
    im.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0])
    im.save(tmp_path / "pal.png", transparency=2)
    out = load_image_file(tmp_path / "pal.png")
    assert out.shape == (2, 2, 3)
    assert np.allclose(out[0, 0], [1, 0, 0]) and np.allclose(out[0, 1], [0, 0, 1])
    assert np.allclose(out[1, 0], 1)  # transparent entry -> white
    im.putpalette([0, 0, 0, 128, 128, 128, 255, 255, 255])
    im.save(tmp_path / "grey.gif")
    out = load_image_file(tmp_path / "grey.gif")
    assert out.shape == (2, 2, 1) and np.allclose(out[..., 0], [[0, 128 / 255], [1, 128 / 255]])


def test_sixteen_bit_png_full_precision(tmp_path):
    img = (RNG.random((5, 7)) * 65535).astype(np.uint16)
    Image.fromarray(img).save(tmp_path / "g16.png")  # Pillow writes 16-bit grey
    assert np.array_equal(load_image_file(tmp_path / "g16.png")[..., 0],
                          (img / 65535).astype(np.float32))
    for c in (1, 2, 3, 4):
        for interlace in (False, True):
            arr = (RNG.random((13, 11, c)) * 65535).astype(np.uint16)
            assert np.array_equal(decode_png16(_png16(arr, interlace), 10**6), arr)
    rgb = (RNG.random((9, 4, 3)) * 65535).astype(np.uint16)
    (tmp_path / "c16.png").write_bytes(_png16(rgb, interlace=True))
    out = load_image_file(tmp_path / "c16.png")
    assert np.allclose(out, rgb / 65535, atol=1e-7, rtol=0)  # Pillow alone keeps 8 bits
    rgb[0, 0] = [1, 2, 3]
    (tmp_path / "key.png").write_bytes(_png16(rgb, trns=struct.pack(">HHH", 1, 2, 3)))
    assert np.allclose(load_image_file(tmp_path / "key.png")[0, 0], 1)  # colour key -> white


def test_why_png16_is_hand_written(tmp_path):
    """Pillow (and imageio and skimage.io, through it) still read 16-bit RGB PNGs as uint8. When
    this fails, a dependency keeps the low byte and datasets/png16.py can be replaced."""
    import imageio.v3 as iio
    import skimage.io

    rgb = (RNG.random((6, 5, 3)) * 65535).astype(np.uint16)
    (tmp_path / "c16.png").write_bytes(_png16(rgb))
    for read in (lambda f: np.asarray(Image.open(f)), iio.imread, skimage.io.imread):
        assert read(tmp_path / "c16.png").dtype == np.uint8


def test_why_resize_is_hand_written():
    """torch's area mode is the same area mean for integer factors only: datasets/resize.py
    keeps exact fractional coverage (and a crop through a pixel) for the others."""
    torch = pytest.importorskip("torch")

    def area(img, size):
        t = torch.from_numpy(img).permute(2, 0, 1)[None].double()
        return torch.nn.functional.interpolate(t, size=size, mode="area")[0].permute(1, 2, 0).numpy()

    img = RNG.random((96, 64, 3))
    assert np.allclose(resize_image(img, (12, 8)), area(img, (12, 8)), atol=1e-6)
    assert np.abs(resize_image(img, (36, 24)) - area(img, (36, 24))).max() > 0.01  # 8/3, no crop


def test_tiff_16bit_float_multipage_and_cmyk(tmp_path):
    rgb = (RNG.random((4, 5, 3)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", np.stack([rgb, rgb[::-1]]), photometric="rgb")
    assert np.allclose(load_image_file(tmp_path / "c.tif"), rgb / 65535, atol=1e-7)  # page 1
    grey = np.array([[-0.5, 0.25], [0.5, 1.5]], np.float32)
    tifffile.imwrite(tmp_path / "f.tiff", grey)
    assert np.allclose(load_image_file(tmp_path / "f.tiff")[..., 0], [[0, 0.25], [0.5, 1]])
    Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    assert np.allclose(load_image_file(tmp_path / "cmyk.tif"), [1, 0, 0], atol=0.01)
    Image.new("CMYK", (3, 2), (255, 0, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    assert np.allclose(load_image_file(tmp_path / "cmyk.jpg"), [0, 1, 0], atol=0.05)


def test_animated_gif_first_frame_and_exif_rotation(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=50)
    assert np.allclose(load_image_file(tmp_path / "a.gif"), [1, 0, 0])
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    Image.new("RGB", (8, 4), (0, 128, 0)).save(tmp_path / "r.jpg", exif=exif)
    assert load_image_file(tmp_path / "r.jpg").shape == (8, 4, 3)


# ---- resize policy ------------------------------------------------------------------

def test_resize_centre_crop_then_area():
    y, x = np.mgrid[0:60, 0:20].astype(np.float32)
    tall = np.stack([y, x], -1)  # 60x20 -> 10x10: keep rows 20..40, 2x2 blocks
    out = resize_image(tall, (10, 10))
    assert out.shape == (10, 10, 2)
    assert np.allclose(out[:, 0, 0], 20.5 + 2 * np.arange(10))
    assert np.allclose(out[0, :, 1], 0.5 + 2 * np.arange(10))
    wide = np.transpose(tall, (1, 0, 2))[..., ::-1]  # 20x60 -> 5x5: columns 20..40
    out = resize_image(wide, (5, 5))
    assert np.allclose(out[0, :, 1], 21.5 + 4 * np.arange(5))
    odd = np.zeros((101, 100, 1), np.float32)
    odd[0] = odd[-1] = 1  # half of each edge row survives the centred crop
    out = resize_image(odd, (100, 100))
    assert np.allclose(out[0], 0.5) and np.allclose(out[-1], 0.5) and np.allclose(out[1:-1], 0)
    flat = np.full((37, 23, 3), 0.3, np.float32)
    assert np.allclose(resize_image(flat, (64, 17)), 0.3)
    assert np.array_equal(resize_image(flat, (37, 23)), flat)


def test_size_argument(tmp_path):
    _save(tmp_path / "a.png", _rgb(40, 30))
    _save(tmp_path / "b.png", _rgb(12, 12))
    with pytest.raises(InputError, match="differ in size"):
        load_images(tmp_path)
    assert load_images(tmp_path, size=(8, 16)).images.shape == (2, 8, 16, 3)
    assert load_images(tmp_path, size=5, limit=1).images.shape == (1, 5, 5, 3)
    for bad in [(0, 4), (4, -1), (2.5, 2), "x"]:
        with pytest.raises(InputError, match="size"):
            load_images(tmp_path, size=bad)
    with pytest.raises(InputError, match="limit"):
        load_images(tmp_path, limit=0)


# ---- arrays -------------------------------------------------------------------------

def test_arrays(tmp_path):
    u8 = (RNG.random((3, 4, 5)) * 255).astype(np.uint8)
    np.save(tmp_path / "a.npy", u8)
    s = load_images(tmp_path / "a.npy")
    assert s.images.shape == (3, 4, 5, 1) and np.allclose(s.images[..., 0], u8 / 255)
    assert s.names[0] == "a/000000" and s.kind == "array"
    u16 = (RNG.random((2, 4, 5, 3)) * 65535).astype(np.uint16)
    np.savez(tmp_path / "b.npz", labels=np.arange(2), images=u16)
    assert np.allclose(load_images(tmp_path / "b.npz").images, u16 / 65535, atol=1e-7)
    np.savez(tmp_path / "c.npz", np.full((2, 3, 3, 3), 0.5, np.float32))
    s = load_images(tmp_path / "c.npz", size=(2, 2), limit=1)
    assert s.images.shape == (1, 2, 2, 3) and np.allclose(s.images, 0.5)
    np.save(tmp_path / "d.npy", np.ones((1, 2, 2), bool))
    assert np.all(load_images(tmp_path / "d.npy").images == 1)


@pytest.mark.parametrize("arr, match", [
    (np.full((1, 2, 2), np.nan, np.float32), "NaN"),
    (np.zeros((4, 4), np.uint8), "shape"),
    (np.zeros((1, 2, 2, 7), np.uint8), "channels"),
    (np.zeros((1, 2, 2), "U3"), "numeric"),
    (np.zeros((1, 2, 2), np.int64), "uint8 or uint16"),
    (np.full((1, 2, 2), 255.0), "divide by 255"),
    (np.zeros((1, 2, 2), object), "cannot read"),
])
def test_bad_arrays(tmp_path, arr, match):
    np.save(tmp_path / "x.npy", arr, allow_pickle=True)
    with pytest.raises(InputError, match=match):
        load_images(tmp_path / "x.npy")


def test_npz_without_arrays(tmp_path):
    np.savez(tmp_path / "e.npz")
    with pytest.raises(InputError, match="no arrays"):
        load_images(tmp_path / "e.npz")


# ---- errors and skipping ------------------------------------------------------------

def test_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        load_images(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "bad" / "y.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="none of the 2 image files"):
        load_images(tmp_path / "bad")
    with pytest.raises(InputError, match="cannot read image"):
        load_image_file(tmp_path / "bad" / "x.png")
    with pytest.raises(InputError) as err:
        load_images("builtin:nope")
    assert all(f"builtin:{name}" in str(err.value) for name in BUILTINS)


def test_unreadable_files_skipped_with_one_warning(tmp_path, capsys):
    _save(tmp_path / "good.png", _rgb())
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    data = _save(tmp_path / "sub" / "cut.jpg", _rgb(64, 64)).read_bytes()
    (tmp_path / "sub" / "cut.jpg").write_bytes(data[:200])  # truncated JPEG
    s = load_images(tmp_path)
    assert s.names == ["good.png"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipped 2 unreadable files")
    assert "bad.png" in lines[0] and "sub/cut.jpg" in lines[0] and "good.png" not in lines[0]


def test_decompression_bomb_refused_from_header(tmp_path, capsys):
    _save(tmp_path / "ok.png", _rgb())
    # 100 MP is refused by our check; 400 MP already by Pillow's own (at 179 MP).
    cases = [("b8.png", 10_000, 8), ("c8.png", 20_000, 8), ("d16.png", 20_000, 16)]
    for name, side, depth in cases:
        ihdr = struct.pack(">IIBBBBB", side, side, depth, 2, 0, 0, 0)
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                                      + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b""))
    assert load_images(tmp_path).names == ["ok.png"]
    err = capsys.readouterr().err
    assert "b8.png (10000x10000 is over the 64-megapixel limit)" in err
    assert "c8.png (over the 64-megapixel limit)" in err
    assert "d16.png (20000x20000 is over the 64-megapixel limit)" in err


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_loop_does_not_hang(tmp_path):
    _save(tmp_path / "a.png", _rgb())
    os.symlink(tmp_path, tmp_path / "loop", target_is_directory=True)
    assert load_images(tmp_path).names == ["a.png"]


# ---- modality -----------------------------------------------------------------------

def test_detect_modality(tmp_path, monkeypatch):
    _save(tmp_path / "img" / "a.png", _rgb())
    (tmp_path / "mesh" / "sub").mkdir(parents=True)
    (tmp_path / "mesh" / "sub" / "m.OBJ").write_text("v 0 0 0\n")
    (tmp_path / "mesh" / "n.stl").write_text("solid x\nendsolid x\n")
    assert detect_modality(tmp_path / "img") == "image"
    assert detect_modality(str(tmp_path / "mesh")) == "sdf"
    assert detect_modality(tmp_path / "mesh" / "n.stl") == "sdf"
    assert detect_modality("builtin:shapes") == "image"
    np.save(tmp_path / "x.npy", np.zeros((1, 2, 2), np.uint8))
    assert detect_modality(tmp_path / "x.npy") == "image"
    with pytest.raises(InputError, match="both images"):
        detect_modality(tmp_path)
    with pytest.raises(InputError, match="meshes, not images"):
        load_images(tmp_path / "mesh")
    with pytest.raises(InputError, match="known: builtin:shapes"):
        detect_modality("builtin:nope")
    monkeypatch.setattr(builtin_mod, "BUILTINS", dict(BUILTINS))
    monkeypatch.setattr(builtin_mod, "BUILTIN_MODALITIES", dict(builtin_mod.BUILTIN_MODALITIES))
    register_builtin("blobs3d", "test", "sdf")
    assert detect_modality("builtin:blobs3d") == "sdf"
    with pytest.raises(InputError, match="not images"):
        load_images("builtin:blobs3d")


# ---- built-ins ----------------------------------------------------------------------

def test_builtin_shapes_deterministic_and_analytic():
    s = load_images("builtin:shapes")
    assert isinstance(s, ImageSet) and s.images.shape == (512, 32, 32, 3)
    assert s.images.dtype == np.float32 and 0 <= s.images.min() and s.images.max() <= 1
    assert s.names[3] == "shapes/000003" and s.summary()["analytic"]
    again = load_images("builtin:shapes", limit=40)  # a prefix of the same sequence
    assert np.array_equal(again.images, s.images[:40])
    assert np.array_equal(load_images("builtin:shapes:7").images, s.images[:7])
    # 4x render averaged over 4x4 blocks vs the 1x render. Measured over all 512 items:
    # mean |diff| 8e-5, max 0.086 (a few polygon-corner pixels; straight edges are exact).
    hi = again.true_render(128, 128)
    down = hi.reshape(40, 32, 4, 32, 4, 3).mean(axis=(2, 4))
    diff = np.abs(down - again.images)
    assert diff.mean() < 5e-4 and diff.max() < 0.12
    assert np.array_equal(again.true_render(32, 32, [5, 2]), again.images[[5, 2]])
    assert again.true_render(24, 48).shape == (40, 24, 48, 3)
    grey = load_images("builtin:shapes-gray", size=(16, 16), limit=4)
    assert grey.images.shape == (4, 16, 16, 1) and grey.true_render(8, 8).shape == (4, 8, 8, 1)
    for bad in ["builtin:shapes:0", "builtin:shapes:x"]:
        with pytest.raises(InputError, match="count"):
            load_images(bad)


def test_builtin_skimage():
    s = load_images("builtin:skimage", size=(16, 16), limit=3)
    assert s.images.shape == (3, 16, 16, 3) and s.true_render is None
    assert s.names[0] == "skimage/astronaut" and 0 <= s.images.min() <= s.images.max() <= 1
