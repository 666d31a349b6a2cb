"""Reading and writing photos safely: one clear error per bad file, atomic writes, no overwrites.

Images cross the public API as RGB ``uint8`` arrays of shape (H,W,3). What the file had beyond that
(alpha, grayscale, 16-bit depth, EXIF rotation) is recorded in :class:`LoadedImage` so it can be restored
on output.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import TEMP_PREFIX, not_regular, open_temp, publish, remove_stale_temp_files

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ENCODER_MAX_SIDE",
    "OutputTooLargeError",
    "check_output_size",
    "SOFTWARE",
    "TEMP_PREFIX",
    "is_gfr_output",
    "ImageHeader",
    "peek_image",
    "remove_stale_temp_files",
    "IMAGE_SUFFIXES",
    "ImageInputError",
    "LoadedImage",
    "max_pixels",
    "open_temp",
    "prepare_array",
    "publish",
    "read_image",
    "restore_mode",
    "write_image",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""File suffixes read as photos (folders given to ``gfr restore``, training and evaluation data)."""

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest accepted image (width x height). Override with the ``GFR_MAX_PIXELS`` environment variable."""


class ImageInputError(ValueError):
    """The input is not a usable image; the message says why and what to do."""


def max_pixels() -> int:
    """Pixel limit in force (``GFR_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`)."""
    raw = os.environ.get("GFR_MAX_PIXELS")
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ImageInputError(
            f"GFR_MAX_PIXELS must be a positive whole number of pixels (e.g. {DEFAULT_MAX_PIXELS}), got {raw!r}"
        )
    return value


@dataclass(frozen=True)
class LoadedImage:
    """A decoded photo: RGB uint8 pixels plus what is needed to write the result back faithfully."""

    rgb: np.ndarray  # (H,W,3) uint8, EXIF orientation applied
    alpha: np.ndarray | None  # (H,W) uint8 alpha channel, if the file had one
    gray: bool  # the file was single-channel (L / I;16 / LA)
    bit_depth: int  # 8, 16 or 32 (deeper inputs are reduced to 8 bits for processing)
    format: str | None  # PIL format name ('PNG', 'JPEG', ...)
    exif_rotated: bool  # an EXIF orientation tag was applied
    frames: int = 1  # frames in the file (GIF, TIFF, WebP animations); only the first is decoded
    conversion: str | None = None  # how float / 32-bit samples were mapped to 8 bits
    exif: bytes | None = None  # the file's EXIF block (written back with the orientation reset to 1)
    icc_profile: bytes | None = None  # the file's ICC colour profile (written back unchanged)

    @property
    def notes(self) -> list[str]:
        """Human-readable remarks about conversions that happened."""
        out = []
        if self.bit_depth > 8:
            out.append(f"{self.bit_depth}-bit input was processed and written at 8 bits per channel")
        if self.conversion:
            out.append(self.conversion)
        if self.exif_rotated:
            out.append("EXIF orientation applied")
        if self.frames > 1:
            out.append(f"only the first of its {self.frames} frames was restored (the others are not written)")
        return out


ENCODER_MAX_SIDE = {".jpg": 65535, ".jpeg": 65535, ".webp": 16383}
"""Largest side each encoder can write (JPEG's 16-bit header fields; libwebp's limit)."""


class OutputTooLargeError(ValueError):
    """The requested output would be larger than allowed; the message gives the largest upscale that fits."""


def check_output_size(
    width: int,
    height: int,
    upscale: float,
    *,
    max_pixels: int,
    suffix: str = ".png",
    name: str = "photo",
    step: float = 0.01,
) -> tuple[int, int]:
    """(W', H') of ``upscale`` x (width, height), or :class:`OutputTooLargeError` before any work is done.

    Bounds: ``max_pixels`` output pixels, and the output format's largest side (:data:`ENCODER_MAX_SIDE`).
    The message names the largest upscale that fits, rounded down to a multiple of ``step`` (the control's).
    """
    ow, oh = round(width * upscale), round(height * upscale)
    fits = [math.sqrt(max_pixels / (width * height))]
    side = ENCODER_MAX_SIDE.get(suffix.lower())
    if side:
        fits.append(side / max(width, height))
    if ow * oh <= max_pixels and (side is None or max(ow, oh) <= side):
        return ow, oh
    why = (
        f"the {max_pixels / 1e6:g} MP output limit"
        if ow * oh > max_pixels
        else f"the largest side {suffix.lstrip('.').upper()} can store ({side} px)"
    )
    largest = round(math.floor(min(fits) / step + 1e-9) * step, 6)
    advice = (
        f"the largest upscale for this photo is {largest:g}"
        if largest >= 1
        else "downscale the photo first" + ("" if side is None else " or write PNG (--ext png)")
    )
    raise OutputTooLargeError(
        f"{name}: {width}x{height} at upscale {upscale:g} would be {ow}x{oh} ({ow * oh / 1e6:.1f} MP), over {why}; "
        f"{advice}"
    )


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
        why = not_regular(fp)  # before any open(): a FIFO would block it
        if why is not None:
            raise ImageInputError(f"{label}: {why.replace('give a file', 'give an image file')}")
        if fp.stat().st_size == 0:
            raise ImageInputError(f"{label}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                _check_size(im.width, im.height, label)
                fmt = im.format
                frames = int(getattr(im, "n_frames", 1) or 1)
                im.load()
                exif = im.getexif()
                orientation = exif.get(0x0112, 1)
                icc = im.info.get("icc_profile") or None
                im = ImageOps.exif_transpose(im)
                loaded = _to_loaded(im, fmt, exif_rotated=orientation not in (None, 1), label=label)
                if frames > 1:
                    log.info("%s: %d frames; only the first is restored", label, frames)
                return dataclasses.replace(
                    loaded, frames=frames, exif=exif.tobytes() if exif else None, icc_profile=icc
                )
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(
            f"{label}: image is too large to decode safely; downscale it or raise GFR_MAX_PIXELS"
        ) from None
    except PermissionError:
        raise ImageInputError(f"{label}: permission denied; make the file readable (chmod +r)") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{label}: not an image file PIL can read (JPEG, PNG, WebP, BMP, TIFF)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageInputError(
            f"{label}: the file is truncated or corrupt ({msg}); re-export or re-download it"
        ) from None


class ImageHeader(NamedTuple):
    """What an image file's header says (:func:`peek_image`)."""

    width: int  # as decoded: EXIF rotation applied
    height: int
    format: str | None  # PIL format name ('PNG', 'JPEG', ...)
    alpha: bool  # the file has an alpha channel or a transparent colour


def peek_image(source: str | Path) -> ImageHeader | None:
    """What an image file holds, from its header alone (no pixels decoded); None when the header cannot be
    read (:func:`read_image` then says why)."""
    if not_regular(source) is not None:  # never open() a FIFO: it blocks
        return None
    try:
        with Image.open(source) as im:
            w, h = im.size
            if im.format == "PNG":  # its getexif() decodes the pixels to find a late eXIf chunk: the early one only
                exif = Image.Exif()
                if isinstance(im.info.get("exif"), bytes):
                    exif.load(im.info["exif"])
            else:
                exif = im.getexif()
            if exif.get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees on display
                w, h = h, w
            alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            return ImageHeader(w, h, im.format, alpha)
    except Exception:  # any header PIL cannot read: reported by read_image, with the right words
        return None


def _samples_to_uint8(arr: np.ndarray, mode: str, label: str) -> tuple[np.ndarray, str | None]:
    """Single-channel 16-bit, 32-bit integer or float samples -> uint8, and how (None when obvious).

    16-bit: /257. Float: [0,1] is scaled by 255, [0,255] kept, anything else min-max stretched. 32-bit
    integers: as 8-bit or 16-bit when they fit, else min-max stretched. Non-finite floats are refused.
    """
    if mode.startswith("I;16"):
        return np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), None
    if not np.isfinite(arr).all():
        raise ImageInputError(f"{label}: the float image holds NaN or infinite values; re-export it with finite values")
    lo, hi = float(arr.min()), float(arr.max())
    if mode == "F" and lo >= 0 and hi <= 1.0:
        out, how = arr * 255.0, "float samples in [0,1] were scaled by 255"
    elif lo >= 0 and hi <= 255:
        out, how = arr, None if mode == "I" else "float samples in [0,255] were used as 8-bit levels"
    elif mode == "I" and lo >= 0 and hi <= 65535:
        out, how = arr / 257.0, None  # 16-bit samples in a 32-bit container (e.g. an int32 TIFF)
    else:
        span = max(hi - lo, 1e-12)
        out = (arr - lo) * (255.0 / span)
        how = f"{'float' if mode == 'F' else '32-bit'} samples in [{lo:.6g}, {hi:.6g}] were stretched to 0..255"
    if how:
        log.info("%s: %s", label, how)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), how


def _to_loaded(im: Image.Image, fmt: str | None, *, exif_rotated: bool, label: str = "image") -> LoadedImage:
    mode = im.mode
    bit_depth = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}.get(mode, 8)
    alpha = None
    conversion = None
    gray = mode in ("L", "LA", "1", "I;16", "I;16B", "I;16L", "I", "F")
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        g, conversion = _samples_to_uint8(arr, mode, label)
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
        conversion=conversion,
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


SOFTWARE = "gfr"
"""The EXIF ``Software`` tag of every file :func:`write_image` writes (JPEG, PNG, WebP, TIFF): how a later
run recognises gfr's own outputs (:func:`is_gfr_output`)."""

_METADATA_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")


_LAYOUT_TAGS = (256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339, 34675)
"""TIFF tags that describe a file's pixel layout (size, strips, tiles, compression, samples, its ICC tag)."""


def _output_exif(exif: bytes | None) -> bytes:
    """The EXIF to write: the input's (orientation reset to 1: the pixels are upright now), tagged as gfr's."""
    e = Image.Exif()
    if exif:
        try:
            e.load(exif)
        except Exception:  # an unreadable EXIF block is dropped, not copied
            log.warning("the input's EXIF could not be parsed; it is not copied to the output")
            e = Image.Exif()
    for tag in _LAYOUT_TAGS:  # the old pixels' layout (a TIFF's EXIF holds it): meaningless for the new ones
        e.pop(tag, None)
    if 0x0112 in e:
        e[0x0112] = 1
    e[0x0131] = SOFTWARE
    return e.tobytes()


def is_gfr_output(path: str | Path) -> bool:
    """True when the file carries gfr's EXIF ``Software`` tag (written by :func:`write_image`)."""
    if not_regular(path) is not None:
        return False
    try:
        with Image.open(path) as im:
            return str(im.getexif().get(0x0131, "")).split(" ")[0] == SOFTWARE
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


def write_image(
    path: str | Path,
    image: np.ndarray,
    *,
    overwrite: bool = False,
    quality: int = 95,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
) -> Path:
    """Write atomically: encode to a temporary file in the same folder, then move it into place. Without
    ``overwrite`` the move fails if the name exists at that moment (checked atomically, not just before).

    Args:
        path: Destination; the format follows the suffix (.png, .jpg, .webp, .bmp, .tif).
        image: (H,W) gray, (H,W,3) RGB or (H,W,4) RGBA uint8 (alpha is dropped for JPEG).
        overwrite: Replace an existing file; otherwise raise ``FileExistsError``.
        quality: JPEG / WebP quality.
        exif: The input's EXIF block, kept (orientation reset to 1) in JPEG, PNG, WebP and TIFF outputs;
            those always carry the ``Software`` tag :data:`SOFTWARE`.
        icc_profile: The input's ICC profile, kept in the same formats.
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
    params: dict[str, object] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt in _METADATA_FORMATS:
        params["exif"] = _output_exif(exif)
        if icc_profile:
            params["icc_profile"] = icc_profile
    fd, tmp = open_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt, **params)
        publish(tmp, path, overwrite=overwrite)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
