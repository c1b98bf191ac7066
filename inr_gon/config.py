"""One config dataclass for a run: model, data and training, saved as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inr_gon.errors import InputError

MODALITIES = ("image", "sdf")
MODELS = ("gon", "conv", "ae")
PRECISIONS = ("fp32", "tf32", "bf16")  # tf32: TF32 matmuls on CUDA; bf16: autocast


@dataclass
class Config:
    # data
    data: str = "builtin:shapes"
    modality: str = "image"  # follows from data: image | sdf
    height: int = 32
    width: int = 32
    channels: int = 3  # image channels (1 or 3); 1 for sdf
    val_fraction: float = 0.1
    # model: SIREN F(coords, z), the implicit GON of the paper is 4 x 256, w0 = 30, latent 32
    model: str = "gon"  # gon (implicit SIREN GON) | conv (convolutional GON) | ae (autoencoder)
    latent_dim: int = 32
    hidden: int = 256
    layers: int = 4  # sine layers (first included)
    w0: float = 30.0  # frequency of the first sine layer
    w0_hidden: float = 30.0  # frequency of the later sine layers
    latent_init: float = 5.0  # scale of the latent columns of the first layer (see siren.py)
    inner_steps: int = 1  # gradient-origin steps (1 = the paper)
    variational: bool = False
    kl_weight: float = 1e-4
    # training
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-4
    lr_min_ratio: float = 0.1  # cosine decay to lr * ratio; 1.0 keeps lr constant
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | tf32 (CUDA matmuls) | bf16 (autocast, CPU or CUDA)
    points_per_signal: int = 0  # 0 = every pixel/point each step; else a random subset
    log_every: int = 25
    preview_every: int = 250
    checkpoint_every: int = 250
    # sdf
    sdf_points: int = 4096  # points sampled per shape and step
    sdf_clamp: float = 0.1  # DeepSDF clamp on distances in the loss
    # speed and scale (see perf.py, step.py, distributed.py, datasets/lazy.py)
    compile: bool = False  # torch.compile the step (minutes to compile on a CPU)
    threads: int = 0  # intra-op CPU threads; 0 = torch's default
    data_memory: int = 1024  # MiB of decoded images held in RAM; larger image folders stream
    data_workers: int = 2  # DataLoader workers decoding a streamed folder; 0 = in the loop
    # bookkeeping filled in by train (data summary, package version)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def coord_dim(self) -> int:
        return 2 if self.modality == "image" else 3

    @property
    def out_dim(self) -> int:
        return self.channels if self.modality == "image" else 1

    def validate(self) -> Config:
        checks = {
            "modality": self.modality in MODALITIES,
            "model": self.model in MODELS,
            "precision": self.precision in PRECISIONS,
            "height": 1 <= self.height <= 8192,
            "width": 1 <= self.width <= 8192,
            "channels": self.channels in (1, 3),
            "val_fraction": 0.0 <= self.val_fraction < 1.0,
            "latent_dim": 1 <= self.latent_dim <= 4096,
            "hidden": 1 <= self.hidden <= 8192,
            "layers": 1 <= self.layers <= 64,
            "w0": 0.0 < self.w0 <= 1e4,
            "w0_hidden": 0.0 < self.w0_hidden <= 1e4,
            "latent_init": 0.0 < self.latent_init <= 1e3,
            "inner_steps": 1 <= self.inner_steps <= 100,
            "kl_weight": 0.0 <= self.kl_weight <= 1e3,
            "steps": 0 <= self.steps <= 10**9,
            "batch_size": 1 <= self.batch_size <= 10**6,
            "lr": 0.0 < self.lr <= 1.0,
            "lr_min_ratio": 0.0 <= self.lr_min_ratio <= 1.0,
            "seed": 0 <= self.seed < 2**63,
            "points_per_signal": self.points_per_signal >= 0,
            "log_every": self.log_every >= 1,
            "preview_every": self.preview_every >= 0,
            "checkpoint_every": self.checkpoint_every >= 0,
            "sdf_points": self.sdf_points >= 1,
            "sdf_clamp": self.sdf_clamp > 0.0,
            "threads": 0 <= self.threads <= 1024,
            "data_memory": self.data_memory >= 0,
            "data_workers": 0 <= self.data_workers <= 64,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"config field '{name}' is out of range: {getattr(self, name)!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: Any) -> Config:
        """Strict: unknown keys, wrong types and out-of-range values name the field."""
        if not isinstance(raw, dict):
            raise InputError("config must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InputError(f"config field '{unknown[0]}' is unknown")
        values = {}
        for name, value in raw.items():
            values[name] = _check_type(name, known[name], value)
        return cls(**values).validate()

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(raw)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _check_type(name: str, f: dataclasses.Field, value: Any) -> Any:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
    }.get(kind, isinstance(value, dict))
    if not ok:
        raise InputError(f"config field '{name}' has the wrong type: {value!r} (want {kind})")
    return float(value) if kind == "float" else value
