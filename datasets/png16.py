"""A small decoder for 16-bit PNGs, so they keep their full precision.

Pillow reduces 16-bit colour PNGs (RGB, grey+alpha, RGBA) to 8 bits per channel, which
would silently throw away the low byte. This module decodes any 16-bit PNG (colour types
0, 2, 4 and 6, plain or Adam7-interlaced) straight to uint16. Everything else goes to
Pillow. Unfiltering runs along anti-diagonals, so the numpy work is O(H + W) steps rather
than a Python loop per pixel.

Why it is hand-written (checked 2026-11 with Pillow 13.0, imageio 2.38, scikit-image 0.26):
none of our dependencies reads a 16-bit RGB PNG at full precision. Pillow opens it as mode
"RGB" (uint8); imageio's default and "pillow" plugins and skimage.io go through Pillow and
return the same uint8; tifffile reads PNG only with imagecodecs, and imageio's FreeImage
plugin needs a downloaded library, neither a dependency. pypng would do it but is one more
package for one decoder. tests/test_datasets.py checks that Pillow still truncates: when that
test fails, Pillow has caught up and this module can go.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (16-bit only)
# Adam7 passes: (first row, first column, row step, column step)
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
          (1, 0, 2, 1))


def png_header(head: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from a file's first 33 bytes."""
    if len(head) < 33 or not head.startswith(SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return width, height, depth, ctype, interlace


def _chunks(data: bytes):
    pos = len(SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        yield kind, data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            return


def _unfilter(raw: np.ndarray, rows: int, cols: int, bpp: int) -> np.ndarray:
    """Undo the per-row PNG filters of one (sub-)image; raw is [rows, 1 + cols*bpp] uint8."""
    kinds = raw[:, 0]
    if kinds.max(initial=0) > 4:
        raise ValueError("bad PNG filter type")
    filt = raw[:, 1:].reshape(rows, cols, bpp)
    if not np.any(kinds >= 3):
        # Only None/Sub/Up: row by row in uint8, whose wrap-around is the modulo 256;
        # Sub is then a running sum along the row.
        out = np.zeros((rows, cols, bpp), np.uint8)
        prev = out[0]
        for r in range(rows):
            row = filt[r]
            if kinds[r] == 1:
                row = np.cumsum(row, axis=0, dtype=np.uint8)
            elif kinds[r] == 2:
                row = row + prev
            out[r] = row
            prev = out[r]
        return out
    filt = filt.astype(np.int16)  # int16 holds a + b - c and filt + pred without overflow
    # General case: pixel (r, x) needs (r, x-1), (r-1, x) and (r-1, x-1), all on earlier
    # anti-diagonals, so each diagonal is one vectorised step. Padding row/column = zeros.
    rec = np.zeros((rows + 1, cols + 1, bpp), np.int16)
    for k in range(rows + cols - 1):
        r = np.arange(max(0, k - cols + 1), min(rows - 1, k) + 1)
        x = k - r
        a, b, c = rec[r + 1, x], rec[r, x + 1], rec[r, x]
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        t = kinds[r][:, None]
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) >> 1, paeth], 0)
        rec[r + 1, x + 1] = (filt[r, x] + pred) & 255
    return rec[1:, 1:].astype(np.uint8)


def decode_png16(data: bytes, max_pixels: int) -> np.ndarray:
    """A 16-bit PNG -> uint16 [H, W, C] (C = 1, 3, 2 or 4, alpha last), tRNS as alpha."""
    header = png_header(data[:33])
    if header is None:
        raise ValueError("not a PNG file")
    width, height, depth, ctype, interlace = header
    if depth != 16 or ctype not in _CHANNELS:
        raise ValueError("not a 16-bit PNG")
    if width * height > max_pixels or width == 0 or height == 0:
        raise ValueError(f"image size {width}x{height} refused")
    chans = _CHANNELS[ctype]
    bpp = 2 * chans
    idat, trns = [], None
    for kind, body in _chunks(data):
        if kind == b"IDAT":
            idat.append(body)
        elif kind == b"tRNS":
            trns = body
    if interlace:
        passes = [(r0, c0, dr, dc, -(-(height - r0) // dr), -(-(width - c0) // dc))
                  for r0, c0, dr, dc in _ADAM7]
        passes = [p for p in passes if p[4] > 0 and p[5] > 0]
    else:
        passes = [(0, 0, 1, 1, height, width)]
    expected = sum(rows * (1 + cols * bpp) for *_, rows, cols in passes)
    # max_length caps the inflated size: a zlib bomb stops at the expected byte count.
    inflater = zlib.decompressobj()
    raw = inflater.decompress(b"".join(idat), expected)
    if len(raw) != expected:
        raise ValueError("truncated PNG data")
    buf = np.frombuffer(raw, np.uint8)
    out = np.zeros((height, width, chans), np.uint16)
    pos = 0
    for r0, c0, dr, dc, rows, cols in passes:
        size = rows * (1 + cols * bpp)
        sub = _unfilter(buf[pos : pos + size].reshape(rows, -1), rows, cols, bpp)
        pos += size
        out[r0::dr, c0::dc] = sub.reshape(rows, cols * chans, 2).view(">u2")[..., 0].reshape(
            rows, cols, chans)
    if trns is not None and ctype in (0, 2) and len(trns) == 2 * chans:
        # A single transparent colour key: turn it into a 0/65535 alpha channel.
        key = np.frombuffer(trns, ">u2").astype(np.uint16)
        alpha = np.where(np.all(out == key, axis=-1), 0, 65535).astype(np.uint16)
        out = np.concatenate([out, alpha[..., None]], axis=-1)
    return out
