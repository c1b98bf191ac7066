"""Image runs on the explore page: the gallery, views of any rectangle of coordinate space at any
pixel size, bicubic of the training resolution over the same rectangle, latent walks, prior
samples, and uploads fitted in one pass.

A view is the decoder evaluated at the pixel centres of the requested rectangle: the
coordinates of `models.render.grid` (y, x in [-1, 1]) mapped onto [y0, y1] x [x0, x1].
"""

from __future__ import annotations

import io
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inr_gon.datasets import CropFolder, LazyFolder, load_image_file, load_images, resize_image, to_channels
from inr_gon.errors import InputError, wxh
from inr_gon.explore.space import Item, Space, TooBig
from inr_gon.inference.fit import MAX_REFINE_STEPS, fit_images
from inr_gon.inference.sample import sample_latents, slerp
from inr_gon.io import to_uint8
from inr_gon.limits import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, MAX_VIEW_SIDE
from inr_gon.metrics import psnr
from inr_gon.training.batches import split_indices

MAX_ZOOM_OUT = 8.0  # a view rectangle lies within [-8, 8]^2: far past the image, never absurd
MAX_UPLOAD_REFINE = 500  # refinement steps an upload may ask for (each is a decoder pass)


def gallery(cfg, n: int) -> list[tuple[str, str, np.ndarray]]:
    """(name, split, image [H, W, C]) of the first n training and n held-out items of a run's
    data, split as training split it; [] when the data cannot be read here any more."""
    if cfg.extra.get("data", {}).get("lazy"):  # a streamed folder: decode only what is shown
        data = (CropFolder if cfg.dataset.crops else LazyFolder)(cfg.dataset.data, cfg.size,
                                                                 cfg.summary.channels)
        count, take = len(data), data.items
    else:
        data = load_images(cfg.dataset.data, cfg.size)
        count, take = len(data.images), lambda idx: data.images[idx]
    train, val = split_indices(count, cfg.dataset.val_fraction, cfg.train.seed)
    out = []
    for split, idx in (("train", train[:n].tolist()), ("held-out", val[:n].tolist())):
        if idx:
            images = to_channels(np.asarray(take(idx), np.float32), cfg.summary.channels)
            out += [(Path(data.names[i]).with_suffix("").as_posix(), split, img)
                    for i, img in zip(idx, images)]
    return out


def load_gallery(space: Space, n: int = 8) -> str | None:
    """Encode the gallery items into space.items; a note when the run's data is not readable."""
    try:
        found = gallery(space.run.cfg, n)
    except InputError as e:
        return f"no gallery: the run's training data cannot be read here ({e})"
    if not found:
        return None
    images = np.stack([img for _, _, img in found])
    z = space.work(lambda: space.run.encode(images).cpu())
    recon = render_latents(space, z, space.run.cfg.size, "the gallery")
    scores = psnr(recon, images)
    space.items += [Item(name, split, z[i], img, float(scores[i]))
                    for i, (name, split, img) in enumerate(found)]
    return None


def view_coords(rect: tuple[float, float, float, float], size: tuple[int, int]) -> torch.Tensor:
    """Pixel centres of an (H, W) image covering rect (x0, y0, x1, y1): [H*W, 2] as (y, x)."""
    x0, y0, x1, y1 = rect
    h, w = size
    ys = y0 + (y1 - y0) * (torch.arange(h, dtype=torch.float64) * 2 + 1) / (2 * h)
    xs = x0 + (x1 - x0) * (torch.arange(w, dtype=torch.float64) * 2 + 1) / (2 * w)
    yy, xx = torch.meshgrid(ys.float(), xs.float(), indexing="ij")
    return torch.stack([yy, xx], dim=-1).reshape(-1, 2)


def check_view(rect: tuple[float, float, float, float], size: tuple[int, int]) -> None:
    x0, y0, x1, y1 = rect
    if not all(math.isfinite(v) and abs(v) <= MAX_ZOOM_OUT for v in rect) or x1 <= x0 or y1 <= y0:
        raise InputError(f"a view is x0 < x1, y0 < y1 within +-{MAX_ZOOM_OUT:g}, got {rect}")
    h, w = size
    if not (0 < h <= MAX_VIEW_SIDE and 0 < w <= MAX_VIEW_SIDE):
        raise InputError(f"a view is 1 to {MAX_VIEW_SIDE} pixels per side, got {wxh(h, w)}")


def render_latents(space: Space, z: torch.Tensor, size: tuple[int, int], what: str,
                   rect: tuple[float, float, float, float] = (-1.0, -1.0, 1.0, 1.0)) -> np.ndarray:
    """Latents [B, D] over rect at (H, W) pixels -> images float32 [B, H, W, C] in [0, 1]."""
    check_view(rect, size)
    h, w = size
    values = space.decode(view_coords(rect, size), z, f"{what} at {wxh(h, w)}")
    return np.clip(values, 0, 1).reshape(z.shape[0], h, w, -1)


def view(space: Space, index: int, rect: tuple[float, float, float, float], size: tuple[int, int]
         ) -> np.ndarray:
    """Item `index` decoded over rect at (H, W) pixels: [H, W, C]."""
    return render_latents(space, space.item(index).z[None], size, "a view", rect)[0]


def bicubic(space: Space, index: int, rect: tuple[float, float, float, float], size: tuple[int, int]
            ) -> np.ndarray:
    """Bicubic interpolation of item `index`'s training-resolution pixels over the same rect:
    [H, W, C]. grid_sample with align_corners=False puts pixel centres where `grid` does."""
    check_view(rect, size)
    truth = space.item(index).truth
    if truth is None:
        raise InputError("this item has no pixels to interpolate")
    h, w = size
    space.check_memory(f"bicubic at {wxh(h, w)}", h * w * (2 + 3 * truth.shape[-1]) * 4)
    img = torch.from_numpy(np.ascontiguousarray(truth)).permute(2, 0, 1)[None]
    grid = view_coords(rect, size).flip(-1).reshape(1, h, w, 2)  # grid_sample takes (x, y)
    out = torch.nn.functional.grid_sample(img, grid, mode="bicubic", padding_mode="border",
                                          align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


def interpolate(space: Space, a: int, b: int, t: float, size: tuple[int, int]) -> np.ndarray:
    """The slerp walk from item a to item b at t in [0, 1]: [H, W, C]."""
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise InputError(f"t must lie in [0, 1], got {t}")
    za, zb = space.item(a).z, space.item(b).z
    z = slerp(za.double(), zb.double(), torch.tensor([t], dtype=torch.float64)).float()
    return render_latents(space, z, size, "an interpolation")[0]


def sample(space: Space, seed: int, size: tuple[int, int]) -> np.ndarray:
    """One draw from a variational run's prior (N(0, I) or its grid prior): [H, W, C]."""
    if not space.run.cfg.net.variational:
        raise InputError("this run is not variational: its latents have no prior to sample")
    _, z = sample_latents(space.run, 1, "model", seed)
    return render_latents(space, z, size, "a sample")[0]


def decode_upload(data: bytes, channels: int) -> np.ndarray:
    """Uploaded bytes -> float32 [H, W, C] with the run's channels, through the project's own
    image decoder; InputError (TooBig for too many bytes or pixels) with one line otherwise."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooBig(f"the upload is {len(data) / 2**20:.1f} MiB, over the "
                     f"{MAX_UPLOAD_BYTES // 2**20} MiB limit")
    if not data:
        raise InputError("the upload is empty")
    try:  # the header alone, before any pixel is decoded: a small file can claim 20000x20000
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise TooBig(f"the upload is over the {MAX_UPLOAD_PIXELS / 1e6:g}-megapixel limit") from None
    except Exception:  # noqa: BLE001 - Pillow cannot place it; the decoder below says why
        w = h = 0
    if w * h > MAX_UPLOAD_PIXELS:
        raise TooBig(f"the upload is {w}x{h}, over the {MAX_UPLOAD_PIXELS / 1e6:g}-megapixel limit")
    with tempfile.TemporaryDirectory(prefix="inr-gon-explore-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        try:
            img = load_image_file(path)
        except InputError as e:  # the temporary path means nothing to the page: drop it
            reason = str(e).replace(f"cannot read image {path}: ", "").replace(str(path), "the upload")
            raise InputError(f"not a usable image: {reason}") from None
    if min(img.shape[:2]) < 2:
        raise InputError("the upload is smaller than 2x2 pixels")
    return to_channels(img, channels)


def fit_upload(space: Space, data: bytes, name: str, refine_steps: int = 0) -> int:
    """Fit an uploaded image at the training size (one gradient-origin pass, then refine_steps
    of latent refinement); its item index."""
    if not 0 <= refine_steps <= min(MAX_UPLOAD_REFINE, MAX_REFINE_STEPS):
        raise InputError(f"refine steps must lie in 0..{MAX_UPLOAD_REFINE}, got {refine_steps}")
    cfg = space.run.cfg
    img = decode_upload(data, cfg.summary.channels)
    space.check_memory("decoding the upload", img.size * 4 * 3)
    if img.shape[:2] != tuple(cfg.size):
        img = resize_image(img, cfg.size)
    start = time.perf_counter()
    res = space.work(lambda: fit_images(space.run, img[None], [name], refine_steps))
    seconds = time.perf_counter() - start
    label = name or f"upload {space.uploads + 1}"
    item = Item(label, "upload", res.z[0].cpu(), img, float(res.scores["psnr"][0]), seconds,
                refine_steps)
    return space.add_upload(item)


def png_bytes(image: np.ndarray) -> bytes:
    """float [H, W, C] in [0, 1] -> 8-bit PNG bytes (fast compression: views are redrawn often)."""
    arr = to_uint8(image)
    arr = arr[..., 0] if arr.shape[-1] == 1 else arr
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
