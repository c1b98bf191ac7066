"""One config dataclass for a run: model, data and training, saved as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from inr_gon.errors import InputError

MODALITIES = ("image", "sdf")
MODELS = ("gon", "conv", "ae")
PRECISIONS = ("fp32", "tf32", "bf16")  # tf32: TF32 matmuls on CUDA; bf16: autocast
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d{1,3})?"
MODULATIONS = ("first", "all")  # issue 12: latent shifts of the first or every sine layer
ORIGIN_STEPS = ("gradient", "learned", "gauss-newton")  # issue 12: see gon.OriginStep
MAX_LATENT_GRID = 64  # cells per side
MAX_LATENT_SIZE = 4096  # values per latent, grid included
MAX_WEIGHTS = 2**28  # hidden^2 * layers: far above any SIREN GON, far below a typo's 17 GB
# Fields that shape the model and its data: a run's config.json must state them all (a
# missing one would silently fall back to a default the weights were not trained with).
MODEL_FIELDS = ("data", "modality", "height", "width", "channels", "model", "latent_dim",
                "hidden", "layers", "w0", "w0_hidden", "latent_init", "inner_steps", "variational",
                "modulation", "latent_grid", "origin_step")  # the last three: issue 12


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
    detach_inner: bool = False  # ablation: no back-propagation through the gradient-origin step
    # --- model capacity and origin step (issue 12; see siren.py and gon.py) ---
    modulation: str = "first"  # first: z shifts the first sine layer | all: every sine layer
    latent_grid: int = 0  # 0: one latent vector; G: a G^d grid of latent_dim-vectors, interpolated
    origin_step: str = "gradient"  # gradient (the paper) | learned (Meta-SGD) | gauss-newton
    # --- end of issue-12 fields ---
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
    sdf_samples: int = 100_000  # points sampled (and cached) per shape: the pool batches draw from
    sdf_noise: str = "0.01,0.05,0.15"  # std of the offsets from the surface, normalised frame
    sdf_uniform: float = 0.8  # share of the pool uniform in [-1, 1]^3 (why so many: sampling.py)
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
    def latent_size(self) -> int:
        """Values per latent: latent_dim, times G^d cells with a latent grid (issue 12)."""
        return max(self.latent_grid, 1) ** self.coord_dim * self.latent_dim

    @property
    def coord_dim(self) -> int:
        return 2 if self.modality == "image" else 3

    @property
    def out_dim(self) -> int:
        return self.channels if self.modality == "image" else 1

    @property
    def sdf_noise_scales(self) -> tuple[float, ...]:
        """sdf_noise "a,b,c" -> (a, b, c): one near-surface sample group per scale."""
        return tuple(float(x) for x in self.sdf_noise.split(","))

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
            "points_per_signal": 0 <= self.points_per_signal <= 10**9,
            "log_every": 1 <= self.log_every <= 10**9,
            "preview_every": 0 <= self.preview_every <= 10**9,
            "checkpoint_every": 0 <= self.checkpoint_every <= 10**9,
            "sdf_points": 1 <= self.sdf_points <= 10**8,
            "sdf_clamp": 0.0 < self.sdf_clamp <= 10.0,
            "data": 0 < len(self.data) <= 4096 and "\x00" not in self.data,
            "device": re.fullmatch(DEVICE_PATTERN, self.device) is not None,
            "sdf_samples": 16 <= self.sdf_samples <= 10**8,
            "sdf_noise": _noise_ok(self.sdf_noise),
            "sdf_uniform": 0.0 <= self.sdf_uniform < 1.0,
            "threads": 0 <= self.threads <= 1024,
            "data_memory": 0 <= self.data_memory <= 2**40,
            "data_workers": 0 <= self.data_workers <= 64,
        }
        for name, ok in checks.items():
            if not ok:
                raise InputError(f"config field '{name}' is out of range: {getattr(self, name)!r}")
        if self.hidden**2 * self.layers > MAX_WEIGHTS:
            raise InputError(f"config fields 'hidden' and 'layers': {self.hidden} x {self.layers} "
                             f"means {self.hidden**2 * self.layers:.3g} weights, above the "
                             f"{MAX_WEIGHTS:.3g} limit")
        _check_extra(self.extra)
        self._check_latent()
        return self._check_model()

    def _check_latent(self) -> None:
        """Issue 12's fields: names, and a grid that fits the image and the latent size limit."""
        for name, allowed in (("modulation", MODULATIONS), ("origin_step", ORIGIN_STEPS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"config field '{name}' must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        g = self.latent_grid
        if not 0 <= g <= MAX_LATENT_GRID:
            raise InputError(f"config field 'latent_grid' is out of range: {g!r} (0 to {MAX_LATENT_GRID})")
        if self.modality == "image" and g > min(self.height, self.width):
            raise InputError(f"--latent-grid {g} is larger than the {self.width}x{self.height} "
                             "images: use at most the smaller side")
        if self.latent_size > MAX_LATENT_SIZE:
            raise InputError(f"a {g}^{self.coord_dim} latent grid of {self.latent_dim}-vectors is "
                             f"{self.latent_size} values per signal, above the {MAX_LATENT_SIZE} limit")
        if self.variational and self.origin_step != "gradient":
            raise InputError(f"--variational takes the gradient step only, not --origin-step "
                             f"{self.origin_step}")
        if self.model != "gon" and self.origin_step != "gradient":
            raise InputError(f"--origin-step {self.origin_step} is for --model gon")
        if self.model == "conv" and (self.modulation != "first" or g):
            raise InputError("--model conv has no SIREN: --modulation and --latent-grid are for "
                             "gon and ae")

    def _check_model(self) -> Config:
        """Combinations the baselines (baselines.py) cannot honour."""
        if self.model != "gon" and self.modality != "image":
            raise InputError(f"model '{self.model}' is for images; use --model gon for {self.modality}")
        if self.model != "gon" and self.variational:
            raise InputError("--variational is implemented for --model gon only")
        if self.model == "ae" and self.detach_inner:
            raise InputError("--detach-inner needs a gradient-origin model (gon or conv), not ae")
        if self.model == "conv":
            self._check_conv()
        if self.modality == "sdf" and self.points_per_signal:
            raise InputError("--points-per-signal is for images; an SDF run draws --sdf-points "
                             "of each shape's points every step")
        if self.model == "ae" and self.points_per_signal:
            raise InputError("--model ae encodes whole images: leave --points-per-signal at 0")
        return self

    def _check_conv(self) -> None:
        """The conv decoder doubles a base grid (layers - 1) times: doublings past one pixel
        only grow an output that is cropped away (2^39 pixels a side at --layers 40)."""
        most = max((max(self.height, self.width) - 1).bit_length(), 1) + 1
        if self.layers > most:
            raise InputError(f"--model conv doubles its grid layers - 1 times: at {self.height}x"
                             f"{self.width} use at most --layers {most}, got {self.layers}")
        if self.hidden < 2 and 2 ** max(self.layers - 1, 1) >= max(self.height, self.width):
            raise InputError(f"--model conv at --layers {self.layers} starts from a 1x1 grid, which "
                             "needs --hidden 2 or more (one value normalises to a constant)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: Any, required: tuple[str, ...] = ()) -> Config:
        """Strict: unknown keys, wrong types and out-of-range values name the field; so do
        missing `required` ones (other missing fields take their defaults)."""
        if not isinstance(raw, dict):
            raise InputError("config must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InputError(f"config field '{unknown[0]}' is unknown")
        missing = [name for name in required if name not in raw]
        if missing:
            raise InputError(f"config field '{missing[0]}' is missing")
        values = {}
        for name, value in raw.items():
            values[name] = _check_type(name, known[name], value)
        return cls(**values).validate()

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, huge numbers, deep nesting
            raise InputError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(raw)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _noise_ok(text: str) -> bool:
    try:
        scales = [float(x) for x in text.split(",")]
    except ValueError:
        return False
    return 1 <= len(scales) <= 8 and all(0.0 < x < 1.0 for x in scales)


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


def _check_extra(extra: dict) -> None:
    """`extra` is bookkeeping (package version, data summary): JSON only, of the known kinds."""
    kinds = {"version": str, "data": dict}
    for key, kind in kinds.items():
        if key in extra and not isinstance(extra[key], kind):
            raise InputError(f"config field 'extra.{key}' has the wrong type: {extra[key]!r:.60} "
                             f"(want {kind.__name__})")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise InputError(f"config field 'extra' is not plain JSON ({e})") from None
