"""Render a grid of images from an inr-gon decoder.onnx with numpy, imageio and onnxruntime only.

    python examples/onnx_render.py runs/photos/decoder.onnx --size 256 --out grid.png
    python examples/onnx_render.py runs/photos/decoder.onnx --latents z.safetensors --size 320x240

The latents are the training items stored in the file's metadata by `inr-gon export`, or a
latents file (`inr-gon fit --out z.safetensors`, `inr-gon sample`) given with --latents.
No torch, no inr-gon import: the files are all it needs.
"""

import argparse
import json
import re
import sys

import imageio.v3 as iio
import numpy as np
import onnxruntime as ort


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Pixel centres (2i + 1)/n - 1 in [-1, 1] as (y, x), row-major: [H*W, 2]."""
    ys = (np.arange(height, dtype=np.float32) * 2 + 1) / height - 1
    xs = (np.arange(width, dtype=np.float32) * 2 + 1) / width - 1
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)


SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}


def read_latents(path: str) -> np.ndarray:
    """The `latents [B, D]` of a safetensors file, read with numpy alone. The format: an 8-byte
    little-endian header length n, n bytes of JSON {name: {dtype, shape, data_offsets}}, then the
    raw little-endian tensor bytes (offsets count from the end of the header)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    if data[:6] == b"\x93NUMPY" or not 2 <= n <= len(data) - 8 or data[8:9] != b"{":
        sys.exit(f"error: {path}: latents must be a .safetensors file written by `inr-gon fit --out`")
    entry = json.loads(data[8:8 + n]).get("latents")
    if not entry or entry.get("dtype") not in SAFETENSORS_DTYPES:
        sys.exit(f"error: {path}: no float 'latents' tensor (F16, F32 or F64) in the file")
    start, stop = entry["data_offsets"]
    body = data[8 + n + start:8 + n + stop]
    return np.frombuffer(body, SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])


def parse_size(text: str) -> tuple[int, int]:
    """'S' or 'WxH' (width x height, as inr-gon's --size) -> (height, width)."""
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip().lower())
    if not m or int(m.group(1)) == 0 or (m.group(2) is not None and int(m.group(2)) == 0):
        raise argparse.ArgumentTypeError(f"must be S or WxH, got '{text}'")
    width = int(m.group(1))
    return (int(m.group(2)) if m.group(2) else width), width


def tile(images: np.ndarray, pad: int = 2) -> np.ndarray:
    """[B, H, W, C] -> one picture, a square-ish grid with white gutters."""
    b, h, w, c = images.shape
    cols = int(np.ceil(np.sqrt(b)))
    rows = int(np.ceil(b / cols))
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), np.float32)
    for i, img in enumerate(images):
        y, x = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        canvas[y:y + h, x:x + w] = img
    return canvas


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("decoder", help="decoder.onnx written by `inr-gon export`")
    p.add_argument("--latents", help="latents .safetensors file from `inr-gon fit --out` or "
                   "`inr-gon sample` (default: the training latents stored in the decoder)")
    p.add_argument("--size", type=parse_size, default=(256, 256),
                   help="each rendered image: S or WxH, width x height (default 256)")
    p.add_argument("--chunk", type=int, default=65536, help="points per onnxruntime call")
    p.add_argument("--out", default="onnx_render.png")
    args = p.parse_args()

    session = ort.InferenceSession(args.decoder, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("inr_gon.kind") != "decoder" or meta.get("inr_gon.modality") != "image":
        sys.exit(f"error: {args.decoder} is not an inr-gon image decoder")
    if [i.name for i in session.get_inputs()] != ["coords", "latent"]:  # a local run's: codes, fy, fx, cell
        sys.exit(f"error: {args.decoder} is a local run's decoder (super-resolution): use "
                 "`inr-gon render RUN photo.png --scale S --backend onnx`")
    if args.latents:
        z = read_latents(args.latents).astype(np.float32)
    else:
        z = np.asarray(json.loads(meta.get("inr_gon.example_latents", "[]")), dtype=np.float32)
    if z.ndim != 2 or len(z) == 0:
        sys.exit("error: no latents: pass --latents z.safetensors (from `inr-gon fit --out`)")
    want = session.get_inputs()[1].shape[1]  # the decoder's latent size D
    if isinstance(want, int) and z.shape[1] != want:
        sys.exit(f"error: the latents have dimension {z.shape[1]}, this decoder's is {want}")

    height, width = args.size
    coords = pixel_grid(height, width)[None]  # [1, N, 2]: one grid shared by every latent
    values = np.concatenate([session.run(None, {"coords": coords[:, i:i + args.chunk], "latent": z})[0]
                             for i in range(0, coords.shape[1], args.chunk)], axis=1)
    images = np.clip(values, 0, 1).reshape(len(z), height, width, -1)
    picture = (tile(images) * 255 + 0.5).astype(np.uint8)
    iio.imwrite(args.out, picture[..., 0] if picture.shape[-1] == 1 else picture)
    print(f"{len(z)} images at {width}x{height} from {meta['inr_gon.modality']} run "
          f"(inr-gon {meta['inr_gon.version']}, {meta['inr_gon.precision']}) -> {args.out}")


if __name__ == "__main__":
    main()
