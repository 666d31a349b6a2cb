"""Images in and out: safe reading and atomic writing of photos, and the one image <-> tensor conversion."""

from .image import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageInputError,
    LoadedImage,
    max_pixels,
    prepare_array,
    read_image,
    restore_mode,
    write_image,
)
from .tensor import from_uint8, to_uint8

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageInputError",
    "LoadedImage",
    "from_uint8",
    "max_pixels",
    "prepare_array",
    "read_image",
    "restore_mode",
    "to_uint8",
    "write_image",
]
