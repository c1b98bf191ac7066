"""The run folder and the Python API: `load_run(path)` -> Run with encode / fit / render."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inr_gon import render as R
from inr_gon.checkpoint import MODEL_FILE, load_model_weights
from inr_gon.config import MODEL_FIELDS, Config
from inr_gon.errors import InputError, warn
from inr_gon.io import read_json, safe_name, write_json

CONFIG_FILE = "config.json"
MAX_RENDER_SIDE = 16384  # as --size: bounds keep a typo from asking for terabytes


def resolve_device(name: str = "auto") -> torch.device:
    """auto picks cuda, then mps, then cpu; an unavailable device is a usage error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device '{name}' (use auto, cpu, cuda[:i] or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' asked for, but CUDA is not available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"device '{name}' does not exist ({torch.cuda.device_count()} GPUs)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' asked for, but MPS is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"unsupported device '{name}'")
    return device


def build_model(cfg: Config) -> nn.Module:
    """gon: the implicit SIREN GON; conv: the paper's convolutional GON; ae: an autoencoder."""
    from inr_gon.baselines import AutoEncoder, ConvGON
    from inr_gon.gon import GON

    models = {"gon": GON, "conv": ConvGON, "ae": AutoEncoder}
    if cfg.model not in models:
        raise InputError(f"model '{cfg.model}' is not available in this version")
    return models[cfg.model](cfg)


def is_run(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def load_config(run_dir: str | Path) -> Config:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder")
    if not is_run(run_dir):
        raise InputError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    raw = read_json(run_dir / CONFIG_FILE)
    try:
        return Config.from_dict(raw, required=MODEL_FIELDS)
    except InputError as e:
        raise InputError(f"{run_dir / CONFIG_FILE}: {e}") from None


def save_config(run_dir: Path, cfg: Config) -> None:
    write_json(run_dir / CONFIG_FILE, cfg.to_dict())


@dataclass
class Run:
    """A trained model and its config. Images are float [B, H, W, C] in [0, 1]."""

    path: Path
    cfg: Config
    model: nn.Module
    device: torch.device
    warned_resample: bool = False

    @property
    def decoder(self) -> nn.Module:
        """The SIREN F(coords, z); the convolutional GON has none."""
        if not hasattr(self.model, "decoder"):
            raise InputError(f"{self.path}: a '{self.cfg.model}' run has no SIREN decoder "
                             "(this needs a gon or ae run)")
        return self.model.decoder

    def require_images(self) -> None:
        """InputError unless this is an image run (an SDF decoder takes 3D points, not pixels)."""
        if self.cfg.modality != "image":
            raise InputError(f"{self.path}: an {self.cfg.modality} run renders no images "
                             "(use `inr-gon mesh`)")

    def to_values(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Images at the training size [B, H, W, C] -> values [B, H*W, C] on the device."""
        self.require_images()
        try:
            x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=self.device)
        except (TypeError, ValueError) as e:
            raise InputError(f"images must be a float array [B, H, W, C] ({e})") from None
        if x.dim() == 3:
            x = x.unsqueeze(-1) if self.cfg.channels == 1 else x.unsqueeze(0)
        if x.dim() != 4 or tuple(x.shape[1:3]) != self.cfg.size or x.shape[-1] != self.cfg.channels:
            raise InputError(f"images are {tuple(x.shape[1:])}, the run wants "
                             f"{(*self.cfg.size, self.cfg.channels)}: resample them first "
                             "(inr_gon.datasets.resize_image)")
        if not torch.isfinite(x).all():
            raise InputError("images contain NaN or inf")
        return x.reshape(x.shape[0], -1, x.shape[-1])

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Gradient-origin latents [B, D] of images at the training size."""
        values = self.to_values(images)
        coords = R.grid(*self.cfg.size, self.device)
        return torch.cat([self.model.encode(coords, values[i:i + batch])
                          for i in range(0, values.shape[0], batch)])

    def render(self, z: torch.Tensor, size: tuple[int, int] | None = None,
               max_memory: int = R.DEFAULT_MAX_MEMORY) -> np.ndarray:
        """Decode latents [B, D] on a (H, W) grid (default: the training size)."""
        self.require_images()
        h, w = size or self.cfg.size
        z = torch.as_tensor(z)
        if z.dim() != 2 or z.shape[1] != self.cfg.latent_size or not torch.isfinite(z).all():
            raise InputError(f"latents must be finite [B, {self.cfg.latent_size}], "
                             f"got {tuple(z.shape)}")
        if not (0 < h <= MAX_RENDER_SIDE and 0 < w <= MAX_RENDER_SIDE):
            raise InputError(f"render size must be 1 to {MAX_RENDER_SIDE} per side, got {h}x{w}")
        if self.cfg.model == "conv" and (h, w) != self.cfg.size and not self.warned_resample:
            self.warned_resample = True  # once per run, not once per rendered item
            warn(f"the convolutional GON decodes at {self.cfg.height}x{self.cfg.width} only: "
                 f"{h}x{w} is a bilinear resample, not a super-resolved render")
        return self.model.render(z.to(self.device), h, w, max_memory)

    def reconstruct(self, images: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        return self.render(self.encode(images), size)


def load_run(path: str | Path, device: str = "cpu") -> Run:
    """A run folder -> Run, weights from model.safetensors (never a pickle)."""
    run_dir = Path(path)
    cfg = load_config(run_dir)
    model = build_model(cfg)
    if not (run_dir / MODEL_FILE).is_file():
        raise InputError(f"{run_dir}: run has no {MODEL_FILE} yet")
    load_model_weights(run_dir, model)
    dev = resolve_device(device)
    return Run(run_dir, cfg, model.to(dev).eval(), dev)


def load_inputs(paths: list[str], size: tuple[int, int], channels: int) -> tuple[list[str], np.ndarray]:
    """Image files or folders -> (names, images [B, H, W, C] at the training size). Inputs of
    another size are resampled (centre crop, area resize) with a warning."""
    from inr_gon.datasets import load_image_file, load_images, resize_image, to_channels

    names, images = [], []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            data = load_images(str(path), size)
            warn(f"{path}: images resampled to {size[0]}x{size[1]}, the training size")
            names += [Path(n).with_suffix("").as_posix().replace("/", "_") for n in data.names]
            images += list(data.images)
            continue
        img = load_image_file(path)
        if img.shape[:2] != tuple(size):
            warn(f"{path}: {img.shape[0]}x{img.shape[1]} resampled to {size[0]}x{size[1]}, "
                 "the training size")
            img = resize_image(img, size)
        names.append(path.stem)
        images.append(img)
    images = [to_channels(np.asarray(i, dtype=np.float32), channels) for i in images]
    return unique_names(names), np.stack(images)


def unique_names(names: list[str]) -> list[str]:
    """Item names as file names: safe (nothing may leave --out), distinct even on a
    case-insensitive file system, and never `grid` (render and sample write grid.png beside
    the items): 'a', 'A', 'a-1' -> 'a', 'A-1', 'a-1-1'."""
    taken, tries = {"grid"}, {}
    result = []
    for n in map(safe_name, names):
        k = tries.get(n.casefold(), 0)
        name = n if k == 0 else f"{n}-{k}"
        while name.casefold() in taken:
            k += 1
            name = f"{n}-{k}"
        tries[n.casefold()] = k + 1
        taken.add(name.casefold())
        result.append(name)
    return result


def training_items(cfg: Config, n: int) -> tuple[list[str], np.ndarray]:
    """The first n training items of a run's data (regenerated or re-read, same split)."""
    from inr_gon.datasets import load_images, to_channels
    from inr_gon.tasks import split_indices

    if cfg.extra.get("data", {}).get("lazy"):  # a streamed folder: decode only the n items
        from inr_gon.datasets import LazyFolder

        data = LazyFolder(cfg.data, cfg.size, cfg.channels)
        train_idx, _ = split_indices(len(data), cfg.val_fraction, cfg.seed)
        pick = train_idx[:n].tolist()
        images = data.items(pick)
    else:
        data = load_images(cfg.data, cfg.size)
        train_idx, _ = split_indices(len(data.images), cfg.val_fraction, cfg.seed)
        pick = train_idx[:n].tolist()
        images = data.images[pick]
    names = [Path(data.names[i]).with_suffix("").as_posix().replace("/", "_") for i in pick]
    return unique_names(names), to_channels(images, cfg.channels)
