"""Built-in data sets, `builtin:NAME[:COUNT]`: generated or shipped, never downloaded."""

from __future__ import annotations

import numpy as np

from inr_gon.errors import InputError

from .decode import flatten_alpha, to_unit_float
from .imageset import ImageSet, check_size
from .resize import resize_image, to_channels
from .shapes2d import render_shapes, shape_params

PREFIX = "builtin:"
DEFAULT_SIZE = (32, 32)
SHAPES_COUNT = 512
MAX_COUNT = 100_000

BUILTINS: dict[str, str] = {
    "shapes": f"{SHAPES_COUNT} flat shapes (disc, triangle, square, hexagon) of random position,"
    " size, rotation and colours, rendered analytically at any resolution, RGB;"
    " builtin:shapes:N for N items",
    "shapes-gray": "the same shapes in grey levels, 1 channel; builtin:shapes-gray:N for N items",
    "skimage": "scikit-image's bundled sample pictures (astronaut, camera, coffee, ...),"
    " centre-cropped, RGB",
}
# Modality of each built-in; other modules add theirs with register_builtin().
BUILTIN_MODALITIES: dict[str, str] = {name: "image" for name in BUILTINS}

# skimage.data pictures shipped inside the wheel (the others need pooch and a download).
_SKIMAGE_NAMES = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "text",
    "clock", "brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry",
    "retina", "colorwheel", "logo", "horse", "cell", "microaneurysms", "shepp_logan_phantom",
)


def register_builtin(name: str, description: str, modality: str) -> None:
    """Make `builtin:name` known (e.g. an SDF set defined elsewhere) to detect_modality
    and to the list of known names; load_images() refuses non-image ones."""
    if modality not in ("image", "sdf"):
        raise ValueError(f"modality must be 'image' or 'sdf', got {modality!r}")
    BUILTINS[name] = description
    BUILTIN_MODALITIES[name] = modality


def known_builtins() -> str:
    return ", ".join(PREFIX + name for name in BUILTINS)


def parse_builtin(spec: str) -> tuple[str, int | None]:
    """'builtin:NAME[:COUNT]' -> (NAME, COUNT or None); InputError if unknown or bad."""
    rest = spec[len(PREFIX) :] if spec.startswith(PREFIX) else spec
    name, _, count_text = rest.partition(":")
    if name not in BUILTINS:
        raise InputError(f"unknown built-in data '{spec}'; known: {known_builtins()}")
    if not count_text:
        return name, None
    try:
        count = int(count_text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_COUNT:
        raise InputError(f"the count in '{spec}' must be an integer from 1 to {MAX_COUNT}")
    return name, count


def builtin_modality(spec: str) -> str:
    return BUILTIN_MODALITIES[parse_builtin(spec)[0]]


def _shapes(spec: str, grey: bool, count: int, size: tuple[int, int]) -> ImageSet:
    params = shape_params(count)
    prefix = "shapes-gray" if grey else "shapes"

    def true_render(height: int, width: int, indices=None) -> np.ndarray:
        h, w = check_size((height, width))
        chosen = params if indices is None else params.take(np.asarray(indices))
        return render_shapes(chosen, h, w, grey=grey)

    return ImageSet(
        images=render_shapes(params, *size, grey=grey),
        names=[f"{prefix}/{i:06d}" for i in range(count)],
        source=spec,
        true_render=true_render,
        kind="builtin",
    )


def _skimage(spec: str, count: int | None, size: tuple[int, int]) -> ImageSet:
    from skimage import data

    images, names = [], []
    for name in _SKIMAGE_NAMES:
        if count is not None and len(images) >= count:
            break
        try:
            arr = np.asarray(getattr(data, name)())
            img = to_unit_float(arr if arr.ndim == 3 else arr[..., None])
            img = to_channels(flatten_alpha(img), 3)
        except Exception:  # noqa: BLE001 - a picture missing from this install is skipped
            continue
        images.append(resize_image(img, size))
        names.append(f"skimage/{name}")
    if not images:
        raise InputError("no scikit-image sample pictures could be loaded from this install")
    return ImageSet(np.stack(images), names, spec, None, kind="builtin")


def load_builtin(spec: str, size: tuple[int, int] | None, limit: int | None) -> ImageSet:
    """Load `builtin:NAME[:COUNT]` at `size` (default 32x32), at most `limit` items."""
    name, count = parse_builtin(spec)
    if BUILTIN_MODALITIES[name] != "image":
        raise InputError(f"'{spec}' is {BUILTIN_MODALITIES[name]} data, not images")
    size = size or DEFAULT_SIZE
    if limit is not None:
        count = min(count, limit) if count is not None else limit
    if name in ("shapes", "shapes-gray"):
        return _shapes(spec, name == "shapes-gray", count or SHAPES_COUNT, size)
    if name == "skimage":
        return _skimage(spec, count, size)
    raise InputError(f"'{spec}' has no image loader")  # registered elsewhere, not here
