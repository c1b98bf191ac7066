"""Data sources for inr-gon (import name `inr_gon.datasets`); images live here so far.

See `images.py` for the channel and resize policies, `shapes2d.py` for the demo family.
"""

from inr_gon.limits import MAX_PIXELS

from . import shapes3d  # noqa: F401  (registers builtin:shapes3d, modality sdf)
from .builtin import BUILTINS, register_builtin
from .crops import CropFolder, photo_size
from .images import (
    ARRAY_EXTS,
    IMAGE_EXTS,
    MESH_EXTS,
    detect_modality,
    find_files,
    load_image_file,
    load_images,
)
from .imageset import ImageSet
from .lazy import LazyFolder
from .resize import resize_image, to_channels
from .sampling import Sampling
from .shapeset import ShapeSet, load_shapes

__all__ = [
    "ARRAY_EXTS",
    "BUILTINS",
    "CropFolder",
    "IMAGE_EXTS",
    "MAX_PIXELS",
    "MESH_EXTS",
    "ImageSet",
    "LazyFolder",
    "Sampling",
    "ShapeSet",
    "detect_modality",
    "find_files",
    "load_image_file",
    "load_images",
    "load_shapes",
    "photo_size",
    "register_builtin",
    "resize_image",
    "to_channels",
]
