"""Reading and writing photos safely: one clear error per bad file, atomic writes, no overwrites.

Images cross the public API as RGB ``uint8`` arrays of shape (H,W,3). What the file had beyond that
(alpha, grayscale, 16-bit depth, EXIF rotation) is recorded in :class:`LoadedImage` so it can be restored
on output.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageInputError",
    "LoadedImage",
    "max_pixels",
    "prepare_array",
    "read_image",
    "restore_mode",
    "write_image",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""File suffixes read as photos (folders given to ``gfr restore``, training and evaluation data)."""

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest accepted image (width x height). Override with the ``GFR_MAX_PIXELS`` environment variable."""


class ImageInputError(ValueError):
    """The input is not a usable image; the message says why and what to do."""


def max_pixels() -> int:
    """Pixel limit in force (``GFR_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`)."""
    try:
        return int(os.environ.get("GFR_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    except ValueError:
        raise ImageInputError(f"GFR_MAX_PIXELS must be an integer, got {os.environ['GFR_MAX_PIXELS']!r}") from None


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo: RGB uint8 pixels plus what is needed to write the result back faithfully."""

    rgb: np.ndarray  # (H,W,3) uint8, EXIF orientation applied
    alpha: np.ndarray | None  # (H,W) uint8 alpha channel, if the file had one
    gray: bool  # the file was single-channel (L / I;16 / LA)
    bit_depth: int  # 8 or 16 (16-bit inputs are reduced to 8 bits for processing)
    format: str | None  # PIL format name ('PNG', 'JPEG', ...)
    exif_rotated: bool  # an EXIF orientation tag was applied

    @property
    def notes(self) -> list[str]:
        """Human-readable remarks about conversions that happened."""
        out = []
        if self.bit_depth == 16:
            out.append("16-bit input was processed and written at 8 bits per channel")
        if self.exif_rotated:
            out.append("EXIF orientation applied")
        return out


def _check_size(w: int, h: int, name: str) -> None:
    limit = max_pixels()
    if w * h > limit:
        raise ImageInputError(
            f"{name}: {w}x{h} = {w * h / 1e6:.1f} MP exceeds the {limit / 1e6:.0f} MP limit; "
            "downscale it first or raise GFR_MAX_PIXELS"
        )
    if w < 1 or h < 1:
        raise ImageInputError(f"{name}: image has no pixels")


def read_image(source: str | Path | bytes, *, name: str | None = None) -> LoadedImage:
    """Decode an image file (JPEG, PNG, WebP, BMP, TIFF, ...).

    Args:
        source: A path or the file's bytes.
        name: Name used in error messages (defaults to the path).

    Raises:
        ImageInputError: Missing, empty, truncated, corrupt, non-image, or over the pixel limit.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    if isinstance(source, bytes):
        if not source:
            raise ImageInputError(f"{label}: the file is empty")
        fp: io.BytesIO | Path = io.BytesIO(source)
    else:
        fp = Path(source)
        if not fp.is_file():
            raise ImageInputError(f"{label}: no such file")
        if fp.stat().st_size == 0:
            raise ImageInputError(f"{label}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                _check_size(im.width, im.height, label)
                fmt = im.format
                im.load()
                orientation = im.getexif().get(0x0112, 1)
                im = ImageOps.exif_transpose(im)
                return _to_loaded(im, fmt, exif_rotated=orientation not in (None, 1))
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(
            f"{label}: image is too large to decode safely; downscale it or raise GFR_MAX_PIXELS"
        ) from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{label}: not an image file PIL can read (JPEG, PNG, WebP, BMP, TIFF)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageInputError(
            f"{label}: the file is truncated or corrupt ({msg}); re-export or re-download it"
        ) from None


def _to_loaded(im: Image.Image, fmt: str | None, *, exif_rotated: bool) -> LoadedImage:
    mode = im.mode
    bit_depth = 16 if mode in ("I;16", "I;16B", "I;16L", "I") else 8
    alpha = None
    gray = mode in ("L", "LA", "1", "I;16", "I;16B", "I;16L", "I", "F")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        scale = 257.0 if arr.max() > 255 or bit_depth == 16 else 1.0
        g = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        rgb = np.repeat(g[..., None], 3, axis=2)
    else:
        if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            alpha = np.asarray(rgba)[..., 3].copy()
            rgb = np.asarray(rgba)[..., :3].copy()
        else:
            rgb = np.asarray(im.convert("RGB")).copy()
    return LoadedImage(
        rgb=np.ascontiguousarray(rgb),
        alpha=alpha,
        gray=gray,
        bit_depth=bit_depth,
        format=fmt,
        exif_rotated=exif_rotated,
    )


def prepare_array(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Normalise an in-memory array to RGB uint8.

    Accepts (H,W) gray, (H,W,1), (H,W,3) RGB or (H,W,4) RGBA, in uint8, uint16 or float in [0,1].

    Returns:
        (rgb (H,W,3) uint8, alpha (H,W) uint8 or None, was_gray).
    """
    a = np.asarray(image)
    if a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)
    elif a.dtype.kind == "f":
        if a.size and not (np.isfinite(a).all() and a.min() >= -1e-3 and a.max() <= 1 + 1e-3):
            raise ImageInputError(
                f"a float image must hold values in [0,1], got [{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]; "
                "divide by 255 (or pass uint8 RGB)"
            )
        a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise ImageInputError(f"unsupported image dtype {a.dtype}; pass uint8, uint16 or float in [0,1]")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return np.ascontiguousarray(np.repeat(a[..., None], 3, axis=2)), None, True
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageInputError(f"expected an (H,W), (H,W,3) or (H,W,4) image (uint8 RGB), got shape {a.shape}")
    if min(a.shape[:2]) < 1:
        raise ImageInputError(f"the image is empty (shape {a.shape}); pass an (H,W,3) uint8 RGB image")
    _check_size(a.shape[1], a.shape[0], "image")
    if a.shape[2] == 4:
        return np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3]), False
    return np.ascontiguousarray(a), None, False


def restore_mode(rgb: np.ndarray, *, alpha: np.ndarray | None, gray: bool) -> np.ndarray:
    """Give an RGB result the input's channel layout back: gray stays gray, alpha is resized and kept."""
    import cv2

    h, w = rgb.shape[:2]
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if gray else rgb
    if alpha is not None:
        a = alpha if alpha.shape[:2] == (h, w) else cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        out = np.dstack([out, a])
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(path: str | Path, image: np.ndarray, *, overwrite: bool = False, quality: int = 95) -> Path:
    """Write atomically: encode to a temporary file in the same folder, then rename into place.

    Args:
        path: Destination; the format follows the suffix (.png, .jpg, .webp, .bmp, .tif).
        image: (H,W) gray, (H,W,3) RGB or (H,W,4) RGBA uint8 (alpha is dropped for JPEG).
        overwrite: Replace an existing file; otherwise raise ``FileExistsError``.
        quality: JPEG / WebP quality.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it (choose another output folder)")
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(image)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ImageInputError(f"{path}: unknown output extension; use .png, .jpg, .webp, .bmp or .tif")
    if fmt == "JPEG" and im.mode in ("RGBA", "LA"):
        im = im.convert("RGB" if im.mode == "RGBA" else "L")
    params = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    fd, tmp = tempfile.mkstemp(prefix=".gfr-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt, **params)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
