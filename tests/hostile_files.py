"""Writers of odd and hostile files for tests/hostile_cases.py: each takes a path and writes one."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

RNG = np.random.default_rng(7)


def rgb(h: int = 8, w: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def good_png(path: Path, h: int = 8, w: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb(h, w)).save(path, format="PNG")


def garbage(path: Path, n: int = 200) -> None:
    path.write_bytes(RNG.integers(0, 256, n, dtype=np.uint8).tobytes())


def truncated_png(path: Path) -> None:
    good_png(path, 16, 16)
    path.write_bytes(path.read_bytes()[:60])


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_raw(path: Path, width: int, height: int, depth: int, ctype: int, rows: bytes) -> None:
    """A PNG from already-filtered scanlines (a 0 filter byte before each row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows))
                     + _chunk(b"IEND", b""))


def png16_rgb(path: Path) -> None:
    arr = RNG.integers(0, 65536, (6, 5, 3), dtype=np.uint16).astype(">u2")
    png_raw(path, 5, 6, 16, 2, b"".join(b"\x00" + row.tobytes() for row in arr))


def bomb_png(path: Path) -> None:
    """A real 1-bit 9000x8000 PNG (72 megapixels) of about 10 KB."""
    row = b"\x00" * (1 + 9000 // 8)
    png_raw(path, 9000, 8000, 1, 0, row * 8000)


def bomb_png16(path: Path) -> None:
    """A 16-bit PNG header promising 10000x10000 pixels (the png16 decoder's path)."""
    png_raw(path, 10000, 10000, 16, 0, b"\x00" * 100)


def bomb_tiff(path: Path) -> None:
    """A TIFF header promising 20000x20000 8-bit pixels, with no pixel data."""
    tags = [(256, 4, 20000), (257, 4, 20000), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 200),
            (277, 3, 1), (278, 4, 20000), (279, 4, 20000 * 20000)]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", v, 0) if kind == 3 else struct.pack("<I", v))
        for tag, kind, v in tags) + struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00" * 64)


def bomb_gif(path: Path) -> None:
    """A GIF whose screen and frame claim 60000x60000 pixels."""
    path.write_bytes(b"GIF89a" + struct.pack("<HH", 60000, 60000) + b"\x00\x00\x00" + b"\x2c"
                     + struct.pack("<HHHH", 0, 0, 60000, 60000) + b"\x00\x02\x02\x44\x01\x00\x3b")


def pil(mode: str, fmt: str = "PNG", transparent: bool = False):
    """Writer of a small Pillow image in `mode` (I;16: 16-bit grey)."""
    def write(path: Path) -> None:
        arr = rgb(7, 9)
        im = Image.fromarray(arr).convert(mode) if mode != "I;16" else \
            Image.fromarray(arr[..., 0].astype(np.uint16) * 257)
        if transparent:
            im.info["transparency"] = 0
        im.save(path, format=fmt)
    return write


def animated(fmt: str):
    def write(path: Path) -> None:
        frames = [Image.fromarray(rgb(6, 6)) for _ in range(3)]
        frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:])
    return write


def tiff(arr: np.ndarray):
    def write(path: Path) -> None:
        tifffile.imwrite(path, arr)
    return write


def npy(arr, allow_pickle: bool = False):
    def write(path: Path) -> None:
        np.save(path, arr, allow_pickle=allow_pickle)
    return write


def npz(**arrays):
    def write(path: Path) -> None:
        np.savez(path, **arrays)
    return write


def forged_npy(path: Path) -> None:
    """A header promising a 300 GB stack, followed by 100 bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                 "shape": (100000, 1000, 1000, 3)})
        f.write(b"\x00" * 100)


def cut(writer, keep: float):
    """writer, then keep only the first `keep` fraction of the file."""
    def write(path: Path) -> None:
        writer(path)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return write


def flip_middle(writer):
    """writer, then corrupt bytes in the middle of the file."""
    def write(path: Path) -> None:
        writer(path)
        data = bytearray(path.read_bytes())
        mid = len(data) // 2
        data[mid - 8: mid + 8] = bytes(255 - b for b in data[mid - 8: mid + 8])
        path.write_bytes(bytes(data))
    return write


def fifo(path: Path) -> None:
    os.mkfifo(path)


def symlink(target: str):
    def write(path: Path) -> None:
        path.symlink_to(target)
    return write


def locked(path: Path) -> None:
    """A file or folder nobody but root may read (root still can: see the runner)."""
    path.chmod(0)


def nested_json(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def edit_json(name: str, **changes):
    def write(run: Path) -> None:
        path = run / name
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return write


def edit_tensors(name: str, change):
    """Rewrite run/name (a safetensors file) through change(tensors, metadata)."""
    def write(run: Path) -> None:
        from safetensors import safe_open

        with safe_open(run / name, "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(run / name)
        tensors, meta = change(dict(tensors), dict(meta))
        save_file(tensors, run / name, meta)
    return write


def latents(z: torch.Tensor | None, names=None, key: str = "latents"):
    def write(path: Path) -> None:
        meta = {} if names is None else {"names": names if isinstance(names, str) else json.dumps(names)}
        save_file({} if z is None else {key: z}, path, meta)
    return write


def onnx_config_edit(**changes):
    """Export the run's decoder, then edit the config in its ONNX metadata by hand."""
    def write(run: Path) -> None:
        import onnx

        from inr_gon.cli.app import main

        try:
            main(["export", str(run), "--quiet"])
        except SystemExit as e:
            assert e.code in (0, None), e.code
        model = onnx.load(str(run / "decoder.onnx"))
        for prop in model.metadata_props:
            if prop.key == "inr_gon.config":
                prop.value = json.dumps({**json.loads(prop.value), **changes})
        onnx.save(model, str(run / "decoder.onnx"))
    return write
