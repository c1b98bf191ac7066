"""Image data: folders, single files, .npy/.npz stacks and built-ins -> ImageSet.

Channel policy. Every file is decoded to 1 (grey) or 3 (RGB) channels:
- grey files (L, 1-bit, 16-bit grey, grey-only palettes, grey TIFFs) stay 1 channel;
  if any item of a set is colour, the grey items are repeated to RGB;
- alpha (RGBA, LA, transparent palette entries, TIFF alpha) is composited over white;
- palette images become RGB, or grey when every colour in use is grey;
- CMYK, YCbCr, LAB, HSV are converted to RGB by Pillow;
- 16-bit data keeps full precision (/65535; 16-bit PNGs have their own decoder);
  1-bit/bool -> {0, 1}; float images are clipped to [0, 1]; signed ints clip at 0;
- animated GIF/TIFF/WebP/PNG: the first frame; EXIF orientation is applied.

Resize policy (resize_image): centre crop to the target aspect ratio, then area
(box-filter) resize. size=None keeps the native size, which must then agree.

Folders are searched recursively (symlinked folders are not followed, so links cannot
loop; hidden files and folders, whose names start with '.', are ignored: macOS '._x.png'
files are metadata, not images), in sorted order of their relative paths. Unreadable
files among good ones are skipped with one warning; images over MAX_PIXELS are refused
from their header, before decoding.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from inr_gon.errors import InputError, warn, wxh

from .arrays import load_array
from .builtin import PREFIX, builtin_modality, load_builtin
from .decode import UnreadableImage, decode_image_file
from .imageset import ImageSet, check_limit, check_size
from .resize import resize_image, to_channels

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MESH_EXTS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")
ARRAY_EXTS = (".npy", ".npz")
_SHOW = 5  # how many file names a message lists before "and N more"


def _list(items: list[str]) -> str:
    more = len(items) - _SHOW
    return ", ".join(items[:_SHOW]) + (f" and {more} more" if more > 0 else "")


def find_files(folder: Path, exts: tuple[str, ...], errors: list[OSError] | None = None
               ) -> list[Path]:
    """Files under folder with one of exts (any case), sorted by relative path. Folders
    that cannot be listed are left out; pass a list as `errors` to learn which."""
    found = []
    on_error = None if errors is None else errors.append
    for root, dirs, files in os.walk(folder, followlinks=False, onerror=on_error):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, f) for f in files
                  if not f.startswith(".") and f.lower().endswith(exts)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _existing(spec: str | os.PathLike) -> Path:
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"no such file or folder: {spec}")
    if not (path.is_file() or path.is_dir()):  # a FIFO or a device would block or never end
        raise InputError(f"{spec} is not a regular file or folder")
    return path


def detect_modality(spec: str | os.PathLike) -> str:
    """'image' or 'sdf' for a data spec: built-ins by their registry, files and folders
    by extension; InputError if missing, unknown, empty or mixed."""
    text = os.fspath(spec)
    if text.startswith(PREFIX):
        return builtin_modality(text)
    path = _existing(text)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in MESH_EXTS:
            return "sdf"
        if suffix in IMAGE_EXTS or suffix in ARRAY_EXTS:
            return "image"
        raise InputError(f"{text}: unsupported file type '{suffix}' (want an image, a mesh, "
                         "a .npy/.npz array or a folder)")
    images, meshes = find_files(path, IMAGE_EXTS), find_files(path, MESH_EXTS)
    if images and meshes:
        raise InputError(f"{text} holds both images ({len(images)}) and meshes ({len(meshes)}); "
                         "put them in separate folders")
    if meshes:
        return "sdf"
    if images:
        return "image"
    raise InputError(f"no images or meshes found in {text} (images: {' '.join(IMAGE_EXTS)}; "
                     f"meshes: {' '.join(MESH_EXTS)})")


def load_image_file(path: str | os.PathLike, size: tuple[int, int] | int | None = None
                    ) -> np.ndarray:
    """One image file -> float32 [H, W, C], C in {1, 3}; resized if size is given."""
    size = check_size(size)
    file = _existing(path)
    if file.is_dir():
        raise InputError(f"{path} is a folder, not an image file")
    try:
        img = decode_image_file(file)
    except UnreadableImage as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None
    return resize_image(img, size) if size else img


def _stack(images: list[np.ndarray], names: list[str], source: str) -> np.ndarray:
    """Same size and channel count for all, or InputError naming the first misfit."""
    shapes = {img.shape[:2] for img in images}
    if len(shapes) > 1:
        first = images[0].shape[:2]
        odd = next(i for i, img in enumerate(images) if img.shape[:2] != first)
        raise InputError(
            f"images in {source} differ in size ({names[0]} is {wxh(*first)}, "
            f"{names[odd]} is {wxh(*images[odd].shape[:2])}); "
            "give a size (--size S or WxH) to resize them all")
    channels = max(img.shape[-1] for img in images)
    return np.stack([to_channels(img, channels) for img in images]).astype(np.float32)


def _load_folder(folder: Path, source: str, size, limit) -> ImageSet:
    errors: list[OSError] = []
    files = find_files(folder, IMAGE_EXTS, errors)
    unlisted = [f"{os.path.relpath(e.filename, folder) if e.filename else '?'} ({e.strerror})"
                for e in errors]
    if not files:
        if find_files(folder, MESH_EXTS):
            raise InputError(f"{source} holds meshes, not images")
        if unlisted:
            raise InputError(f"no images found in {source}: cannot list {_list(unlisted)}")
        raise InputError(f"no images found in {source} (looked for {' '.join(IMAGE_EXTS)})")
    if unlisted:
        noun = "folder" if len(unlisted) == 1 else "folders"
        warn(f"skipped {len(unlisted)} unreadable {noun} in {source}: {_list(unlisted)}")
    images, names, bad = [], [], []
    for file in files:
        if limit is not None and len(images) >= limit:
            break
        rel = file.relative_to(folder).as_posix()
        try:
            img = decode_image_file(file)
        except UnreadableImage as exc:
            bad.append((rel, str(exc)))
            continue
        # Resize now, so a folder of large photos never sits in memory at full size.
        images.append(resize_image(img, size) if size else img)
        names.append(rel)
    if not images:
        rel, reason = bad[0]
        raise InputError(f"none of the {len(bad)} image files in {source} could be read "
                         f"(e.g. {rel}: {reason})")
    if bad:
        # Reasons only for refused sizes: decoder messages are noisy, a size is actionable.
        shown = [f"{rel} ({why})" if "megapixel" in why else rel for rel, why in bad]
        noun = "file" if len(bad) == 1 else "files"
        warn(f"skipped {len(bad)} unreadable {noun} in {source}: {_list(shown)}")
    return ImageSet(_stack(images, names, source), names, source, None, kind="folder")


def load_images(spec: str | os.PathLike, size: tuple[int, int] | int | None = None,
                limit: int | None = None) -> ImageSet:
    """Load an image data spec (folder, image file, .npy/.npz, builtin:NAME) as an ImageSet.

    size=(H, W) resizes every item by resize_image; None keeps the native size (32x32
    for built-ins). limit keeps at most that many items (the first, in sorted order)."""
    size, limit = check_size(size), check_limit(limit)
    source = os.fspath(spec)
    try:
        return _load(source, size, limit)
    except MemoryError as e:  # e.g. numpy's "Unable to allocate 412. GiB for an array ..."
        raise InputError(f"{source}: not enough memory ({e}); try a smaller size or fewer "
                         "items") from None


def _load(source: str, size: tuple[int, int] | None, limit: int | None) -> ImageSet:
    if source.startswith(PREFIX):
        return load_builtin(source, size, limit)
    path = _existing(source)
    if path.is_dir():
        return _load_folder(path, source, size, limit)
    suffix = path.suffix.lower()
    if suffix in ARRAY_EXTS:
        stack = load_array(path, limit)
        if size:
            stack = np.stack([resize_image(img, size) for img in stack])
        names = [f"{path.stem}/{i:06d}" for i in range(len(stack))]
        return ImageSet(stack, names, source, None, kind="array")
    if suffix in MESH_EXTS:
        raise InputError(f"{source} is a mesh, not an image")
    img = load_image_file(path, size)
    return ImageSet(img[None], [path.name], source, None, kind="file")
