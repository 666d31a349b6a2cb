"""Resolution-aware composition of a restored face with the photo (pure functions).

A restorer of resolution S only knows the frequencies an S x S crop can hold. Pasting its output into a
face that lands at 300 px throws away everything above S, and pasting a square brings its background
with it. Here the restorer contributes a *correction* instead: ``restored - aligned input`` in crop
space, band-limited to the crop's resolution (a Gaussian of ``detail_sigma`` crop pixels) and with its
coarse part (a Gaussian of ``colour_sigma * S``) removed, so the face keeps the input's colour and
brightness. The correction is warped back with the face's inverse transform, weighted by a face-shaped
mask and ``1 - fidelity``, and added to the upscaled photo. So:

* every frequency above the restorer's resolution is exactly the upscaled photo's (the result is never
  blurrier than the background's upscale, whatever the face size);
* the blurred colour of the face is the input's (no pink faces, no sepia on grayscale photos);
* ``fidelity = 1`` adds nothing: the output is exactly the upscaled photo; between 0 and 1 the face moves
  linearly towards it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Composition", "face_correction", "fine_detail_change", "is_grayscale", "to_grayscale"]


@dataclass(frozen=True)
class Composition:
    """How a restored crop is merged into the photo."""

    detail_sigma: float = 0.7  # Gaussian (crop px) band-limiting the correction: the crop's top octave is unsure
    output_sigma: float = 1.0  # ... and at least this many output px: the output's finest detail stays the photo's
    colour_sigma: float = 0.1  # Gaussian (fraction of S) of the coarse part removed: colour stays the input's
    full_shrink: float = 0.75  # the correction is applied in full where the crop has >= this many px per input px
    zero_shrink: float = 0.25  # ... and not at all below this: there the input resolves more than the model
    gray_tolerance: int = 3  # channels within this on 99.5 % of the pixels: a grayscale photo

    def __post_init__(self) -> None:
        ok = (
            0 <= self.detail_sigma <= 8
            and 0 <= self.output_sigma <= 8
            and 0 < self.colour_sigma <= 1
            and 0 <= self.zero_shrink < self.full_shrink
            and 0 <= self.gray_tolerance <= 64
        )
        if not ok:
            raise ValueError(f"composition out of range: {self}")

    def for_face(self, shrink: float, upscale: float) -> tuple[float, float]:
        """(detail sigma in crop px, strength in [0,1]) for a face whose crop has ``shrink`` px per input px,
        in an output upscaled ``upscale`` times."""
        output_px_per_crop_px = upscale / max(shrink, 1e-6)
        sigma = max(self.detail_sigma, self.output_sigma / output_px_per_crop_px)
        strength = float(np.clip((shrink - self.zero_shrink) / (self.full_shrink - self.zero_shrink), 0.0, 1.0))
        return sigma, strength


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return img if sigma <= 0 else cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def face_correction(
    restored: np.ndarray, aligned: np.ndarray, *, detail_sigma: float, colour_sigma: float
) -> np.ndarray:
    """The band-limited change the restorer made to one crop: (S,S,3) float32, in grey levels.

    Args:
        restored: (S,S,3) uint8 model output.
        aligned: (S,S,3) uint8 crop the model was given.
        detail_sigma: Gaussian (crop pixels) that removes the finest scales of the change.
        colour_sigma: Gaussian (fraction of S) whose part of the change is removed (colour, brightness).
    """
    d = restored.astype(np.float32) - aligned.astype(np.float32)
    return _blur(d, detail_sigma) - _blur(d, colour_sigma * restored.shape[0])


def fine_detail_change(source: np.ndarray, target: np.ndarray, *, sigma: float) -> np.ndarray:
    """What replacing ``target``'s detail finer than ``sigma`` (pixels) with ``source``'s adds: float32, in
    grey levels, same shape. Everything coarser (colour, shape) stays ``target``'s."""
    s, t = source.astype(np.float32), target.astype(np.float32)
    return (s - _blur(s, sigma)) - (t - _blur(t, sigma))


def is_grayscale(rgb: np.ndarray, tolerance: int = 3) -> bool:
    """True when R, G and B agree within ``tolerance`` on 99.5 % of the pixels (a gray photo stored as RGB)."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # a ~250k-pixel sample is plenty
    a = rgb[::step, ::step].astype(np.int16)
    spread = np.maximum(np.abs(a[..., 0] - a[..., 1]), np.abs(a[..., 1] - a[..., 2]))
    return float(np.mean(spread <= tolerance)) >= 0.995


def to_grayscale(rgb: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 -> (H,W,3) uint8 with R = G = B = the luma (ITU-R 601)."""
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(y[..., None], 3, axis=2)
