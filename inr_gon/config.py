"""A run's config: four groups of choices (net, dataset, train, sdf) and what the data
determined (summary), saved as one flat JSON beside the weights, as every earlier version did.

Each field is declared once, with its default, its one-line doc (the `--help` line of
`inr-gon train`) and its bounds: `knob(default, "doc", bounds="[1, 64]")`, `choices=(...)`,
`pattern=` or `check=`. Field names are unique across groups, so a flat name routes to its
group (`Config.of(hidden=64)`, `cfg.replace(lr=1e-3)`) and any earlier flat config.json loads.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any

from inr_gon import fields as checks
from inr_gon.errors import InputError, wxh
from inr_gon.fields import duration_seconds, knob, scale_spans
from inr_gon.limits import MAX_TRAIN_SIDE
from inr_gon.modality import MODALITIES, Modality

MODELS = ("gon", "conv", "ae", "local")
PRECISIONS = ("fp32", "tf32", "bf16", "auto")  # tf32: CUDA matmuls; bf16: autocast; device.py
IMAGE_LOSSES = ("mse", "l1")  # models/base.outer_loss
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d{1,3})?"
MODULATIONS = ("first", "all")  # latent shifts of the first or of every sine layer (siren.py)
ORIGIN_STEPS = ("gradient", "learned", "gauss-newton", "gauss-newton-cg")  # origin.OriginStep
MAX_LATENT_GRID = 64  # cells per side
MAX_LATENT_SIZE = 4096  # values per latent, grid included
UNLIMITED_STEPS = 10**9  # --steps at this bound: only --time-budget ends the run
MAX_WEIGHTS = 2**28  # hidden^2 * layers: far above any SIREN GON, far below a typo's 17 GB
# Fields a run's config.json must state (a missing one would fall back to a default the weights
# were not trained with); the later ones' defaults are what a config.json without them meant.
MODEL_FIELDS = ("data", "modality", "height", "width", "channels", "model", "latent_dim",
                "hidden", "layers", "w0", "w0_hidden", "latent_init", "inner_steps", "variational")


@dataclass
class ModelConfig:
    """The SIREN F(coords, z); the implicit GON of the paper is 4 x 256, w0 = 30, latent 32."""

    model: str = knob("gon", "gon (implicit SIREN GON) | conv (conv GON) | ae | local "
                      "(super-resolution)", choices=MODELS)
    latent_dim: int = knob(32, "Latent size D", bounds="[1, 4096]")
    hidden: int = knob(256, "Width of the sine layers", bounds="[1, 8192]")
    layers: int = knob(4, "Sine layers, the first included (the paper: 4)", bounds="[1, 64]")
    w0: float = knob(30.0, "Frequency of the first sine layer", bounds="(0, 1e4]")
    w0_hidden: float = knob(30.0, "Frequency of the later sine layers", bounds="(0, 1e4]")
    latent_init: float = knob(5.0, "Scale of the first layer's latent columns (siren.py)", bounds="(0, 1e3]")
    inner_steps: int = knob(1, "Gradient-origin steps (1 = the paper)", bounds="[1, 100]")
    local_base: str = knob("none", "--model local: the decoder adds its output to none | bicubic "
                           "(of the input: the codes model the residual)", choices=("none", "bicubic"))
    local_pixels: bool = knob(False, "--model local, bicubic base: the decoder also reads the "
                              "input's pixels through its window (docs/superres.md)")
    local_window: str = knob("quadratic", "--model local: windows a point reads: quadratic (4x4) | wide "
                             "(+8x8) | pyramid | cubic", choices=("quadratic", "wide", "pyramid", "cubic"))
    variational: bool = knob(False, "Variational GON: a prior to sample from")
    kl_weight: float = knob(1e-4, "Weight of the KL term (variational runs)", bounds="[0, 1e3]")
    prior_length: float = knob(0.0, "Variational, Gauss-Newton, on a latent grid: the prior's "
                               "correlation length in cells (0: N(0, I), cells apart)", bounds="[0, 64]")
    detach_inner: bool = knob(False, "Ablation: no back-propagation through the gradient step")
    modulation: str = knob("first", "How z enters the SIREN: first (shifts the first sine layer) | "
                           "all (shifts every sine layer, functa)", choices=MODULATIONS)
    latent_grid: int = knob(0, "0: one latent vector; G: a G^d grid of latent-dim vectors, "
                            "interpolated (set with --latent-grid G or GxG)",
                            bounds=f"[0, {MAX_LATENT_GRID}]", cli=False)
    origin_step: str = knob("gradient", "The step from z0 = 0: gradient (the paper) | learned "
                            "(Meta-SGD) | gauss-newton (damped) | gauss-newton-cg (solved by CG)",
                            choices=ORIGIN_STEPS)


@dataclass
class DataConfig:
    """What to train on and how it is held in memory."""

    data: str = knob("builtin:shapes", "Image folder, .npy/.npz array, mesh folder or builtin:NAME",
                     check=checks.path_ok, cli=False)
    height: int = knob(32, "Training height (set with --size)", bounds=f"[1, {MAX_TRAIN_SIDE}]", cli=False)
    width: int = knob(32, "Training width (set with --size)", bounds=f"[1, {MAX_TRAIN_SIDE}]", cli=False)
    val_fraction: float = knob(0.1, "Share of the items held out for validation", bounds="[0, 1)")
    data_memory: int = knob(1024, "MiB of decoded images held in RAM; larger image folders stream",
                            bounds="[0, 2**40]")
    data_workers: int = knob(2, "Worker processes decoding a streamed folder (0 = in the loop)",
                             bounds="[0, 64]")
    crops: bool = knob(False, "Folders of photos: train on random --size crops of each photo at "
                       "its own resolution, not on the whole photo shrunk to --size")


@dataclass
class TrainConfig:
    """The optimiser, its schedule, the logging, and where and how fast a step runs."""

    steps: int = knob(2000, f"Training steps ({UNLIMITED_STEPS}: no step limit, what "
                      "--time-budget alone sets)", bounds=f"[0, {UNLIMITED_STEPS}]")
    time_budget: str = knob("0", "Wall-clock limit such as 90s, 20m or 1h (0 = none): the lr "
                            "schedule follows the time spent; with --steps the first limit "
                            "reached ends the run", check=checks.duration_ok)
    batch_size: int = knob(32, "Signals per step", bounds="[1, 10**6]")
    lr: float = knob(1e-4, "Adam learning rate", bounds="(0, 1]")
    lr_min_ratio: float = knob(0.1, "Cosine decay to lr * ratio; 1.0 keeps lr constant",
                               bounds="[0, 1]")
    warmup_steps: int = knob(0, "Steps of linear lr warm-up before the decay (0 = none)", bounds="[0, 10**9]")
    grad_clip: float = knob(0.0, "Clip the gradient's norm at this multiple of its running mean "
                            "(0 = off)", bounds="[0, 1e6]")
    seed: int = knob(0, "Seed of everything random (items, points, split, noise)", bounds="[0, 2**63)")
    points_per_signal: int = knob(0, "Pixels drawn per image and step (0 = all)",
                                  bounds="[0, 10**9]")
    device: str = knob("auto", "auto | cpu | cuda[:i] | mps", pattern=DEVICE_PATTERN)
    precision: str = knob("fp32", "fp32 | tf32 (CUDA matmuls) | bf16 (autocast) | auto (bf16 for "
                           "image models where the device has it natively)", choices=PRECISIONS)
    image_loss: str = knob("mse", "Images: the training loss, mse | l1 (EDSR's and LIIF's)",
                           choices=IMAGE_LOSSES)
    compile: bool = knob(False, "torch.compile the training step (compiling: ~45 s once on 2 cores)")
    threads: int = knob(0, "CPU threads (0 = torch's default)", bounds="[0, 1024]")
    log_every: int = knob(25, "Steps between metrics lines", bounds="[1, 10**9]")
    preview_every: int = knob(250, "Steps between preview pictures (0 = none)", bounds="[0, 10**9]")
    checkpoint_every: int = knob(250, "Steps between checkpoints (0 = at the end only)",
                                 bounds="[0, 10**9]")
    max_memory: int = knob(0, "MiB of activations a step may take (0 = no cap); above it each "
                           "step draws a subset of the points of every signal", bounds="[0, 2**40]")
    tensorboard: bool = knob(False, "Also log scalars and previews to RUN/tensorboard "
                             "(pip install \"inr-gon[tensorboard]\")")
    # Each factor adds an encode of that view, decoded at full size: about a step per factor.
    observe_scales: str = knob("1", "Also encode box-downsampled views, e.g. 1,2,4 (scored at "
                               "full size); a local model also takes fractions and spans, "
                               "1-4: a factor drawn every step", check=checks.scales_ok)


@dataclass
class SdfConfig:
    """How points are sampled around each shape (datasets/sampling.py)."""

    sdf_points: int = knob(4096, "SDF: points per shape and step", bounds="[1, 10**8]")
    sdf_clamp: float = knob(0.1, "SDF: clamp of the L1 loss (DeepSDF)", bounds="(0, 10]")
    sdf_samples: int = knob(100_000, "SDF: points sampled (and cached) per shape", bounds="[16, 10**8]")
    sdf_noise: str = knob("0.01,0.05,0.15", "SDF: near-surface noise scales, e.g. 0.005,0.05",
                          check=checks.noise_ok)
    sdf_uniform: float = knob(0.8, "SDF: share of points uniform in the cube", bounds="[0, 1)")


@dataclass
class DataSummary:
    """What the data determined when training started: not options, filled in by `train`."""

    modality: str = knob("image", "image | sdf, from DATA", choices=tuple(MODALITIES), cli=False)
    channels: int = knob(3, "Image channels (1 or 3); 1 for sdf", choices=(1, 3), cli=False)


GROUPS: dict[str, type] = {"net": ModelConfig, "dataset": DataConfig, "train": TrainConfig,
                           "sdf": SdfConfig, "summary": DataSummary}
FIELD_GROUP: dict[str, str] = {f.name: g for g, cls in GROUPS.items() for f in fields(cls)}
FIELDS: dict[str, dataclasses.Field] = {f.name: f for cls in GROUPS.values() for f in fields(cls)}
assert len(FIELDS) == sum(len(fields(c)) for c in GROUPS.values()), "field names must be unique"


def route(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"hidden": 64, "lr": 1e-3} -> {"net": {"hidden": 64}, "train": {"lr": 1e-3}}.
    A group name with a dict (or group) value passes through; `extra` stays at the top."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in flat.items():
        if name in GROUPS:
            items = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
            if not isinstance(items, dict):
                raise InputError(f"config group '{name}' must be an object")
            for key, v in items.items():
                if FIELD_GROUP.get(key) != name:
                    raise InputError(f"config field '{name}.{key}' is unknown")
                out.setdefault(name, {})[key] = v
        elif name in FIELD_GROUP:
            out.setdefault(FIELD_GROUP[name], {})[name] = value
        elif name != "extra":
            raise InputError(f"config field '{name}' is unknown")
    return out


@dataclass
class Config:
    net: ModelConfig = field(default_factory=ModelConfig)
    dataset: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sdf: SdfConfig = field(default_factory=SdfConfig)
    summary: DataSummary = field(default_factory=DataSummary)
    extra: dict[str, Any] = field(default_factory=dict)  # filled in by train: data summary, version

    @classmethod
    def of(cls, **flat: Any) -> Config:
        """Config.of(hidden=64, lr=1e-3): flat field names, routed to their groups."""
        return cls().replace(**flat)

    def replace(self, **changes: Any) -> Config:
        """A copy with flat fields (or whole groups, or extra) changed."""
        groups = {g: dataclasses.replace(getattr(self, g), **kw) for g, kw in route(changes).items()}
        extra = {"extra": changes["extra"]} if "extra" in changes else {}
        return dataclasses.replace(self, **groups, **extra)

    @property
    def size(self) -> tuple[int, int]:
        return (self.dataset.height, self.dataset.width)

    @property
    def latent_size(self) -> int:
        """Values per latent: latent_dim, times G^d cells with a latent grid."""
        return max(self.net.latent_grid, 1) ** self.coord_dim * self.net.latent_dim

    @property
    def budget_seconds(self) -> float:
        """--time-budget in seconds; 0: none."""
        return duration_seconds(self.train.time_budget)

    @property
    def modality(self) -> Modality:
        """The facts of the run's kind of signal (modality.py)."""
        return MODALITIES[self.summary.modality]

    @property
    def coord_dim(self) -> int:
        return self.modality.coord_dim

    @property
    def out_dim(self) -> int:
        return self.modality.out_dim(self.summary.channels)

    def flat(self) -> dict[str, Any]:
        """Every field by its (unique) name, and extra: the layout of config.json."""
        out = {name: getattr(getattr(self, FIELD_GROUP[name]), name) for name in FIELDS}
        return {**out, "extra": self.extra}

    def validate(self) -> Config:
        """Each field against its declared bounds, then the combinations; returns self."""
        for name, value in self.flat().items():
            if name != "extra" and not checks.valid_value(FIELDS[name], value):
                raise InputError(f"config field '{name}' is out of range: {value!r}")
        net = self.net
        if net.hidden**2 * net.layers > MAX_WEIGHTS:
            raise InputError(f"config fields 'hidden' and 'layers': {net.hidden} x {net.layers} "
                             f"means {net.hidden**2 * net.layers:.3g} weights, above the "
                             f"{MAX_WEIGHTS:.3g} limit")
        checks.check_extra(self.extra)
        self._check_latent()
        self._check_points()
        return self

    def _check_latent(self) -> None:
        """A latent grid that fits the images and the size limit."""
        g = self.net.latent_grid
        if self.modality.shared_grid and g > min(self.size):
            raise InputError(f"--latent-grid {g} is larger than the {wxh(*self.size)} "
                             f"images: use at most the smaller side")
        if self.latent_size > MAX_LATENT_SIZE:
            raise InputError(f"a {g}^{self.coord_dim} latent grid of {self.net.latent_dim}-vectors "
                             f"is {self.latent_size} values per signal, above the "
                             f"{MAX_LATENT_SIZE} limit")

    def _check_points(self) -> None:
        """Points drawn per signal are for images; a view needs whole images a factor divides."""
        if self.summary.modality == "sdf" and self.train.points_per_signal:
            raise InputError("--points-per-signal is for images; an SDF run draws --sdf-points "
                             "of each shape's points every step")
        if scale_spans(self.train.observe_scales) == [(1, 1)]:
            return
        if not self.modality.shared_grid:  # a view box-downsamples the pixel grid
            raise InputError("--observe-scales is for --model gon or local on images")
        if self.train.points_per_signal:
            raise InputError("--observe-scales encodes whole images: leave --points-per-signal at 0")
        if self.net.model != "local":  # a local model takes any factor (area averages)
            checks.check_box_views(self.train.observe_scales, self.size)

    to_dict = flat  # what config.json holds

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: Any, required: tuple[str, ...] = ()) -> Config:
        """Flat (config.json of any version) or grouped ({"net": {...}, ...}) keys. Strict:
        unknown keys, wrong types and out-of-range values name the field; so do missing
        `required` ones (other missing fields take their defaults)."""
        if not isinstance(raw, dict):
            raise InputError("config must be a JSON object")
        groups = route(raw)
        given = {name for kw in groups.values() for name in kw}
        missing = [name for name in required if name not in given]
        if missing:
            raise InputError(f"config field '{missing[0]}' is missing")
        flat = typed({name: v for kw in groups.values() for name, v in kw.items()})
        if "extra" in raw and not isinstance(raw["extra"], dict):
            raise InputError(f"config field 'extra' has the wrong type: {raw['extra']!r:.60} (want dict)")
        return cls.of(**flat, extra=raw.get("extra", {})).validate()

    @classmethod
    def from_json(cls, text: str) -> Config:
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, huge numbers, deep nesting
            raise InputError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(raw)


def typed(flat: dict[str, Any]) -> dict[str, Any]:
    """Flat field values checked against their declared types (ints accepted as floats)."""
    return {name: checks.typed_value(name, FIELDS[name], value) for name, value in flat.items()}
