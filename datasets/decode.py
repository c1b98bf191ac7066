"""One image file -> float32 [H, W, C] in [0, 1] with C in {1, 3}.

Decoders: 16-bit PNGs go to `png16` (Pillow would drop their low byte), TIFFs to
tifffile (a scikit-image dependency; it keeps 16-bit and float colour TIFFs), everything
else to Pillow. Any failure becomes `UnreadableImage` with a short reason, so a folder
loader can skip the file instead of printing a traceback. Image dimensions are checked
from the header before the pixels are decoded, against MAX_PIXELS.
"""

from __future__ import annotations

import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

from inr_gon.limits import MAX_PIXELS  # larger files are refused as decompression bombs

from .png16 import decode_png16, png_header

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class UnreadableImage(Exception):
    """A file that cannot be used as an image; the message is a short reason."""


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise UnreadableImage(
            f"{width}x{height} is over the {MAX_PIXELS / 1e6:g}-megapixel limit")
    if width <= 0 or height <= 0:
        raise UnreadableImage("empty image")


def to_unit_float(arr: np.ndarray) -> np.ndarray:
    """Pixel values -> float32 in [0, 1] by dtype: bool, uint8 /255, uint16 /65535, other
    unsigned ints / their max, signed ints clipped at 0 / their max, floats clipped."""
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        top = float(np.iinfo(arr.dtype).max)
        return (np.clip(arr, 0, None).astype(np.float64) / top).astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise UnreadableImage("NaN or infinite pixel values")
        return np.clip(out, 0.0, 1.0)
    raise UnreadableImage(f"unsupported pixel type {arr.dtype}")


def flatten_alpha(img: np.ndarray, premultiplied: bool = False) -> np.ndarray:
    """[H, W, 1-4] float -> [H, W, 1 or 3]: a 2nd/4th channel is alpha, composited over
    white (the usual page background, so transparent margins do not turn black)."""
    if img.shape[-1] not in (2, 4):
        return img
    colour, alpha = img[..., :-1], img[..., -1:]
    if premultiplied:
        return np.clip(colour + (1.0 - alpha), 0.0, 1.0)
    return colour * alpha + (1.0 - alpha)


def _from_pillow(im: Image.Image) -> np.ndarray:
    """A loaded Pillow image in any mode -> float [H, W, C] (C in 1..4, alpha last)."""
    mode = im.mode
    if mode in ("P", "PA"):
        # Palette: RGB(A) unless every palette entry in use is grey, then L(A).
        rgba = np.asarray(im.convert("RGBA"))
        grey = bool(np.all(rgba[..., 0] == rgba[..., 1]) and np.all(rgba[..., 1] == rgba[..., 2]))
        opaque = bool(np.all(rgba[..., 3] == 255))
        arr = rgba[..., [0] if grey else [0, 1, 2]]
        if not opaque:
            arr = np.concatenate([arr, rgba[..., 3:]], axis=-1)
        return to_unit_float(arr)
    if mode in ("La", "RGBa"):
        im = im.convert(mode[:-1] + "A")
    elif mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        # CMYK, YCbCr, LAB, HSV, RGBX, ...: Pillow's own conversion to RGB.
        im = im.convert("RGB")
    arr = np.asarray(im)
    if im.mode == "I":
        # 32-bit integer mode: Pillow's container for 16-bit grey data, so scale as 16-bit.
        arr = np.clip(arr, 0, 65535).astype(np.uint16)
    if arr.ndim == 2:
        arr = arr[..., None]
    return to_unit_float(arr)


def _decode_pillow(path: str) -> np.ndarray:
    with warnings.catch_warnings():
        # Pillow warns about big images itself; the MAX_PIXELS check below is stricter.
        warnings.simplefilter("ignore")
        try:
            im = Image.open(path)
        except Image.DecompressionBombError:  # Pillow's own hard limit, far above ours
            raise UnreadableImage(f"over the {MAX_PIXELS / 1e6:g}-megapixel limit") from None
        with im:
            _check_pixels(*im.size)
            im.seek(0)  # animated GIF/TIFF/WebP/APNG: the first frame
            im.load()
            # Phone photos store their rotation in EXIF: show them the way viewers do.
            im = ImageOps.exif_transpose(im)
            return _from_pillow(im)


def _decode_tiff(path: str) -> np.ndarray | None:
    """Grey/RGB TIFFs at full precision via tifffile; None hands the file to Pillow."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        _check_pixels(int(page.imagewidth), int(page.imagelength))
        photometric = int(page.photometric)
        if photometric not in (0, 1, 2) or page.axes not in ("YX", "YXS", "SYX"):
            return None  # palette, CMYK, YCbCr, volumes, ...: Pillow knows those
        arr = page.asarray()
        extras = [int(e) for e in page.extrasamples]
    if page.axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    n_colour = 3 if photometric == 2 else 1
    if arr.shape[-1] < n_colour:
        return None
    img = to_unit_float(arr)
    colour = img[..., :n_colour]
    if photometric == 0:  # MINISWHITE: 0 means white
        colour = 1.0 - colour
    # Extra sample kinds: 1 = premultiplied alpha, 2 = straight alpha, 0 = unspecified (drop).
    if extras and extras[0] in (1, 2) and img.shape[-1] > n_colour:
        rgba = np.concatenate([colour, img[..., n_colour : n_colour + 1]], axis=-1)
        return flatten_alpha(rgba, premultiplied=extras[0] == 1)
    return colour


def _decode_any(path: str) -> np.ndarray:
    # A FIFO or a device named x.png would block or never end: regular files only.
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise UnreadableImage("not a regular file")
    with open(path, "rb") as f:
        head = f.read(33)
    header = png_header(head)
    if header is not None and header[2] == 16:
        _check_pixels(header[0], header[1])
        with open(path, "rb") as f:
            return to_unit_float(decode_png16(f.read(), MAX_PIXELS))
    if head[:4] in _TIFF_MAGIC:
        img = _decode_tiff(path)
        if img is not None:
            return img
    return _decode_pillow(path)


def decode_image_file(path: str | os.PathLike) -> np.ndarray:
    """Decode one file to float32 [H, W, C], C in {1, 3}; raises UnreadableImage."""
    try:
        img = flatten_alpha(_decode_any(os.fspath(path)))
    except UnreadableImage:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "unreadable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableImage(reason[:120]) from exc
    if img.shape[-1] not in (1, 3):
        raise UnreadableImage(f"unsupported channel count {img.shape[-1]}")
    return np.ascontiguousarray(img, dtype=np.float32)
