"""GFPGAN's blind degradation model, scaled to any face resolution, with explicit seeded randomness.

``y = JPEG_q( (x * k_sigma) downsampled by r  + n_delta )`` then resized back to the face size, where the
blur kernel is isotropic or anisotropic Gaussian, r the downsampling factor, n Gaussian noise and q the
JPEG quality; the result is resized back to the face size with bicubic interpolation (so the degraded
face is also the plain bicubic baseline). Colour jitter and grayscale are applied with small probabilities.

**Scaling to resolution S.** GFPGAN's ranges are stated for 512 px faces. A blur of sigma pixels at 512 px
is the same physical blur as ``sigma * S / 512`` at S px, so blur sigmas (and the kernel size, 41 px at
512) scale with ``S / 512``. Downsampling factors, noise levels (in 0-255 units per pixel), JPEG quality and
colour jitter are relative quantities and are kept as they are.

Every random function takes a ``numpy.random.Generator``: the same seed gives the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "PRESETS",
    "DegradationPreset",
    "add_gaussian_noise",
    "color_jitter",
    "degrade",
    "downsample",
    "gaussian_blur",
    "gaussian_kernel",
    "jpeg",
    "random_blur",
    "to_gray",
]


@dataclass(frozen=True)
class DegradationPreset:
    """Parameter ranges at 512 px (see the module docstring for how they scale)."""

    blur_sigma: tuple[float, float] = (0.1, 10.0)  # Gaussian blur sigma range, pixels at 512 px
    blur_kernel_512: int = 41  # blur kernel size at 512 px
    aniso_prob: float = 0.5  # probability of an anisotropic kernel
    downsample: tuple[float, float] = (0.8, 8.0)  # downsampling factor range
    noise: tuple[float, float] = (0.0, 20.0)  # Gaussian noise sigma range, 0-255 units
    jpeg: tuple[int, int] = (60, 100)  # JPEG quality range
    color_jitter_prob: float = 0.3  # probability of a colour shift
    color_jitter_shift: float = 20.0  # max per-channel shift, 0-255 units
    gray_prob: float = 0.01  # probability of converting to grayscale


PRESETS: dict[str, DegradationPreset] = {
    "gfpgan": DegradationPreset(),
    "mild": DegradationPreset(
        blur_sigma=(0.1, 3.0),
        downsample=(0.8, 2.5),
        noise=(0.0, 8.0),
        jpeg=(80, 100),
        color_jitter_prob=0.0,
        gray_prob=0.0,
    ),
    "severe": DegradationPreset(
        blur_sigma=(3.0, 12.0),
        downsample=(4.0, 10.0),
        noise=(10.0, 25.0),
        jpeg=(40, 70),
        color_jitter_prob=0.0,
        gray_prob=0.0,
    ),
}
"""``gfpgan`` is the default (training and evaluation); ``mild`` and ``severe`` bracket it for robustness studies."""


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """(size,size) normalised 2-D Gaussian with axes sigma_x, sigma_y rotated by ``theta`` radians."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    xx, yy = np.meshgrid(ax, ax)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy
    k = np.exp(-0.5 * ((u / max(sigma_x, 1e-6)) ** 2 + (v / max(sigma_y, 1e-6)) ** 2))
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(
    img: np.ndarray, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, *, size: int | None = None
) -> np.ndarray:
    """Blur (H,W,C) uint8 with a (possibly anisotropic) Gaussian; reflect padding at the borders."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    if size is None:
        size = 2 * math.ceil(3 * max(sigma_x, sigma_y)) + 1
    size = max(3, size | 1)
    k = gaussian_kernel(size, sigma_x, sigma_y, theta)
    out = cv2.filter2D(img.astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def random_blur(img: np.ndarray, rng: np.random.Generator, preset: DegradationPreset = PRESETS["gfpgan"]) -> np.ndarray:
    """Isotropic or anisotropic Gaussian blur with sigma drawn from the preset, scaled to the image size."""
    scale = img.shape[0] / 512.0
    lo, hi = preset.blur_sigma
    sx = rng.uniform(lo, hi) * scale
    if rng.random() < preset.aniso_prob:
        sy, theta = rng.uniform(lo, hi) * scale, rng.uniform(0, math.pi)
    else:
        sy, theta = sx, 0.0
    size = max(3, int(round(preset.blur_kernel_512 * scale)) | 1)
    return gaussian_blur(img, sx, sy, theta, size=size)


def downsample(img: np.ndarray, factor: float, *, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Shrink by ``factor`` (>= 1 shrinks; < 1 enlarges slightly), at least 2x2 pixels."""
    h, w = img.shape[:2]
    nh, nw = max(2, int(round(h / factor))), max(2, int(round(w / factor)))
    return cv2.resize(img, (nw, nh), interpolation=interpolation)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator, *, gray: bool = False) -> np.ndarray:
    """Add N(0, sigma^2) noise in 0-255 units; ``gray`` uses the same noise on every channel."""
    shape = img.shape[:2] + ((1,) if gray else img.shape[2:])
    noise = rng.normal(0.0, sigma, shape).astype(np.float32)
    return np.clip(np.round(img.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality`` (RGB in, RGB out)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def color_jitter(img: np.ndarray, rng: np.random.Generator, max_shift: float = 20.0) -> np.ndarray:
    """Shift each channel by a uniform offset in [-max_shift, max_shift]."""
    shift = rng.uniform(-max_shift, max_shift, 3).astype(np.float32)
    return np.clip(np.round(img.astype(np.float32) + shift), 0, 255).astype(np.uint8)


def to_gray(img: np.ndarray) -> np.ndarray:
    """Luma-only copy, kept as 3 channels."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[..., None], 3, axis=2)


def degrade(img: np.ndarray, rng: np.random.Generator, preset: str | DegradationPreset = "gfpgan") -> np.ndarray:
    """Apply the full blind degradation to an (S,S,3) uint8 RGB face; returns the same size.

    Args:
        img: Clean face.
        rng: Source of randomness (``np.random.default_rng(seed)``).
        preset: A name from :data:`PRESETS` or a :class:`DegradationPreset`.
    """
    p = PRESETS[preset] if isinstance(preset, str) else preset
    h, w = img.shape[:2]
    out = random_blur(img, rng, p)
    out = downsample(out, rng.uniform(*p.downsample))
    out = add_gaussian_noise(out, rng.uniform(*p.noise), rng)
    out = jpeg(out, int(rng.integers(p.jpeg[0], p.jpeg[1] + 1)))
    out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)  # the 'bicubic baseline' is this image
    if rng.random() < p.color_jitter_prob:
        out = color_jitter(out, rng, p.color_jitter_shift)
    if rng.random() < p.gray_prob:
        out = to_gray(out)
    return out
