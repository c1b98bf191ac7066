"""Render a grid of images from an inr-gon decoder.onnx with numpy, imageio and onnxruntime only.

    python examples/onnx_render.py runs/photos/decoder.onnx --size 256 --out grid.png

The latents are the training items stored in the file's metadata by `inr-gon export`, or a
`.npy` array [B, D] given with --latents. No torch, no inr-gon import: the file is all it needs.
"""

import argparse
import json
import sys

import imageio.v3 as iio
import numpy as np
import onnxruntime as ort


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Pixel centres (2i + 1)/n - 1 in [-1, 1] as (y, x), row-major: [H*W, 2]."""
    ys = (np.arange(height, dtype=np.float32) * 2 + 1) / height - 1
    xs = (np.arange(width, dtype=np.float32) * 2 + 1) / width - 1
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)


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
    p.add_argument("--latents", help=".npy array of latents [B, D] (default: those in the file)")
    p.add_argument("--size", type=int, default=256, help="side of each rendered image")
    p.add_argument("--chunk", type=int, default=65536, help="points per onnxruntime call")
    p.add_argument("--out", default="onnx_render.png")
    args = p.parse_args()

    session = ort.InferenceSession(args.decoder, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("inr_gon.kind") != "decoder" or meta.get("inr_gon.modality") != "image":
        sys.exit(f"error: {args.decoder} is not an inr-gon image decoder")
    if args.latents:
        z = np.load(args.latents, allow_pickle=False).astype(np.float32)
    else:
        z = np.asarray(json.loads(meta.get("inr_gon.example_latents", "[]")), dtype=np.float32)
    if z.ndim != 2 or len(z) == 0:
        sys.exit("error: no latents: pass --latents FILE.npy with an array [B, D]")

    coords = pixel_grid(args.size, args.size)[None]  # [1, N, 2]: one grid shared by every latent
    values = np.concatenate([session.run(None, {"coords": coords[:, i:i + args.chunk], "latent": z})[0]
                             for i in range(0, coords.shape[1], args.chunk)], axis=1)
    images = np.clip(values, 0, 1).reshape(len(z), args.size, args.size, -1)
    picture = (tile(images) * 255 + 0.5).astype(np.uint8)
    iio.imwrite(args.out, picture[..., 0] if picture.shape[-1] == 1 else picture)
    print(f"{len(z)} images at {args.size}x{args.size} from {meta['inr_gon.modality']} run "
          f"(inr-gon {meta['inr_gon.version']}, {meta['inr_gon.precision']}) -> {args.out}")


if __name__ == "__main__":
    main()
