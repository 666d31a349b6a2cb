"""Resolution-aware composition of restored faces with the photo (pure functions).

Per face, the crop's density ``d`` (crop pixels per output pixel) decides (:meth:`Composition.replacement`):

* **the crop resolves the output** (``d >= replace_full``): the restored face is taken whole, warped back
  with Lanczos (:func:`gfr_core.face.warp_crop`), plus the photo's own detail finer than the crop can hold;
  only a tint beyond ``colour_tolerance`` grey levels is removed. A strong model keeps what it restores
  (measured with a perfect restorer: ``gfr eval-photos --oracle``);
* **it does not** (``d <= replace_zero``): the restorer contributes a *correction*, ``restored - aligned
  input`` in crop space, band-limited to the crop's resolution (a Gaussian of ``detail_sigma`` crop pixels)
  with its coarse part (a Gaussian of ``colour_sigma * S``) removed, added to the upscaled photo. Every
  frequency above the restorer's resolution stays the upscaled photo's (never blurrier than it), and the
  face keeps the input's colour; faded out where the input out-resolves the model (``full_shrink``);
* in between, a smoothstep of ``d`` blends the two: no seam, no jump as faces grow.

Both are weighted by the face mask and ``1 - fidelity``: ``fidelity = 1`` adds nothing (exactly the
upscaled photo), and between 0 and 1 the face moves linearly towards it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..face import add_correction, affine_scale, warp_crop, warp_mask

__all__ = [
    "Composition",
    "colour_excess",
    "compose_faces",
    "face_correction",
    "face_notes",
    "fine_detail_change",
    "is_grayscale",
    "keep_detail",
    "to_grayscale",
]


@dataclass(frozen=True)
class Composition:
    """How a restored crop is merged into the photo."""

    detail_sigma: float = 0.7  # Gaussian (crop px) band-limiting the correction: the crop's top octave is unsure
    output_sigma: float = 1.0  # ... and at least this many output px: the output's finest detail stays the photo's
    colour_sigma: float = 0.1  # Gaussian (fraction of S) of the coarse part removed: colour stays the input's
    full_shrink: float = 1.0  # the correction is applied in full where the crop has >= this many px per input px
    zero_shrink: float = 0.5  # ... and not at all below this: there the input resolves more than the model
    gray_tolerance: int = 3  # channels within this on 99.5 % of the pixels: a grayscale photo
    replace_full: float = 1.0  # crop px per output px from which the restored face replaces the photo's whole
    replace_zero: float = 0.75  # ... and below which it only corrects it (smoothstep in between)
    colour_tolerance: float = 4.0  # where replaced, a coarse colour change beyond this many grey levels (times
    # the crop px per input px, when above 1: a small input face's colour is less sure) is removed as a tint;
    # below it the restorer's colour stands (the degraded input's own colour is no more accurate than that)
    highpass: float = 0.45  # where replaced, the photo keeps its detail finer than the crop: a Gaussian of
    # highpass * sqrt(1/d^2 - 1) output px, d the crop px per output px (0 where the crop resolves the output)
    trust: float = 0.0  # how far the model's output is believed where its crop does not resolve the output:
    # 0 = the thresholds above (protective), 1 = the face replaced wherever the model restores it, in full
    # (the official 512 px models, the perfect restorer); in between the thresholds shrink by 1 - trust.
    # From the model's card (ModelCard.trust), measured for the embedded models

    def __post_init__(self) -> None:
        ok = (
            0 <= self.detail_sigma <= 8
            and 0 <= self.output_sigma <= 8
            and 0 < self.colour_sigma <= 1
            and 0 <= self.zero_shrink < self.full_shrink
            and 0 <= self.gray_tolerance <= 64
            and 0 < self.replace_zero < self.replace_full
            and 0 <= self.highpass <= 4
            and 0 <= self.colour_tolerance <= 255
            and 0 <= self.trust <= 1
        )
        if not ok:
            raise ValueError(f"composition out of range: {self}")

    def for_face(self, shrink: float, upscale: float) -> tuple[float, float]:
        """(detail sigma in crop px, strength in [0,1]) for a face whose crop has ``shrink`` px per input px,
        in an output upscaled ``upscale`` times."""
        output_px_per_crop_px = upscale / max(shrink, 1e-6)
        sigma = max(self.detail_sigma, self.output_sigma / output_px_per_crop_px)
        return sigma, _ramp(shrink, self.zero_shrink, self.full_shrink, 1.0 - self.trust)

    def replacement(self, density: float) -> float:
        """How much of a face is replaced by the restorer's (1) rather than corrected (0), from the crop's
        ``density`` in crop pixels per output pixel (a smoothstep between ``replace_zero`` and ``replace_full``,
        both shrunk by ``1 - trust``)."""
        t = _ramp(density, self.replace_zero, self.replace_full, 1.0 - self.trust)
        return t * t * (3 - 2 * t)

    def highpass_sigma(self, density: float) -> float:
        """Gaussian (output px) below which a replaced face keeps the photo's detail: the band the crop cannot hold."""
        return 0.0 if density >= 1.0 else self.highpass * float(np.sqrt(1.0 / max(density, 1e-3) ** 2 - 1.0))


def _ramp(x: float, lo: float, hi: float, scale: float) -> float:
    """0 below ``lo * scale``, 1 above ``hi * scale``, linear in between (1 everywhere when ``scale`` is 0)."""
    if scale <= 0:
        return 1.0
    return float(np.clip((x - lo * scale) / ((hi - lo) * scale), 0.0, 1.0))


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


def colour_excess(restored: np.ndarray, aligned: np.ndarray, *, colour_sigma: float, tolerance: float) -> np.ndarray:
    """The part of a restorer's coarse change (a Gaussian of ``colour_sigma * S``) beyond ``tolerance`` grey
    levels, per pixel and channel: (S,S,3) float32. Subtracted from a restored face, it removes a tint
    and keeps the restorer's smaller colour corrections (a degraded input's own colour is off by a few levels)."""
    d = _blur(restored.astype(np.float32) - aligned.astype(np.float32), colour_sigma * restored.shape[0])
    return np.sign(d) * np.maximum(np.abs(d) - tolerance, 0.0)


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


def compose_faces(
    canvas: np.ndarray,
    faces: Sequence[Any],
    masks: Sequence[np.ndarray],
    c: Composition,
    *,
    strength: float,
    upscale: float,
) -> np.ndarray:
    """Merge restored faces into the upscaled photo, ``strength`` (1 - fidelity) times: (H,W,3) uint8.

    Args:
        canvas: (H,W,3) uint8, the photo upscaled ``upscale`` times (bicubic, as the background).
        faces: Restored faces (their ``aligned`` and ``restored`` (S,S,3) uint8 crops and ``affine``).
        masks: (S,S) float32 blend mask per face.
        c: The composition rules.
    """
    out = canvas.astype(np.float32)
    for face, mask in zip(faces, masks, strict=True):
        shrink = affine_scale(face.affine)  # crop pixels per input pixel
        density = shrink / upscale  # crop pixels per output pixel
        sigma, weight = c.for_face(shrink, upscale)
        w, alpha = weight * strength, c.replacement(density)
        if w == 0:
            continue
        if alpha < 1:  # the band-limited correction: the crop does not resolve the output
            correction = face_correction(face.restored, face.aligned, detail_sigma=sigma, colour_sigma=c.colour_sigma)
            add_correction(out, correction * (w * (1 - alpha)), face.affine, upscale=upscale, mask=mask)
        if alpha > 0:  # the restored face itself, plus the photo's detail beyond the crop's resolution
            placed = warp_mask(mask, face.affine, upscale=upscale, shape=out.shape[:2])
            if placed is None:
                continue
            (x0, y0, x1, y1), m = placed
            tolerance = c.colour_tolerance * max(1.0, shrink)
            tint = colour_excess(face.restored, face.aligned, colour_sigma=c.colour_sigma, tolerance=tolerance)
            face_px = face.restored.astype(np.float32) - tint
            warped = warp_crop(face_px, face.affine, upscale=upscale, box=(x0, y0, x1, y1))
            keep = _lowpass(out, (x0, y0, x1, y1), c.highpass_sigma(density))
            out[y0:y1, x0:x1] += (w * alpha) * m[..., None] * (warped - keep)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def face_notes(
    faces: Sequence[Any],
    before: np.ndarray,
    after: np.ndarray,
    composition: Composition,
    *,
    upscale: float,
    face_size: int,
    name: str,
) -> list[str]:
    """One line for every face, in order: how much of the restoration reached the photo (``before`` ->
    ``after``, the upscaled photo without and with the faces), and why when it is little (faded out because
    the face is larger than a ``face_size`` model resolves, or changed by under two grey levels); then, once,
    the model that would help."""
    notes, weak = [], False
    h, w = after.shape[:2]
    for i, face in enumerate(faces, 1):
        _, weight = composition.for_face(affine_scale(face.affine), upscale)
        x0, y0, x1, y1 = np.clip(np.round(face.box * upscale).astype(int), 0, [w, h, w, h])
        x1, y1 = max(x1, min(x0 + 1, w)), max(y1, min(y0 + 1, h))  # a face at the very edge keeps one pixel
        change = float(np.abs(after[y0:y1, x0:x1].astype(np.float32) - before[y0:y1, x0:x1]).mean())
        box = face.box[2:] - face.box[:2]
        px = f"{max(box):.0f} px"
        if weight == 0:
            notes.append(
                f"face {i} ({px}) is larger than the {face_size} px model '{name}' resolves: left as the upscaled photo"
            )
        elif weight < 0.9:
            notes.append(
                f"face {i} ({px}): the {face_size} px model's change faded to {weight:.0%} (the face is larger than "
                f"its crop resolves), {change:.1f} grey levels on average"
            )
        else:
            notes.append(f"face {i} ({px}): changed by {change:.1f} grey levels on average")
        weak |= weight < 0.9 or change < 2.0
    if weak and face_size < 512:  # what would help, said once
        notes.append("`gfr download gfpgan-v1.4` (349 MB) gives a 512 px model that restores such faces")
    return notes


def _lowpass(img: np.ndarray, box: tuple[int, int, int, int], sigma: float) -> np.ndarray:
    """The ``box`` (x0, y0, x1, y1) of ``img`` blurred by a Gaussian of ``sigma`` px (context from around it)."""
    x0, y0, x1, y1 = box
    if sigma <= 0:
        return img[y0:y1, x0:x1].copy()
    pad = int(np.ceil(3 * sigma)) + 1
    h, w = img.shape[:2]
    a0, b0, a1, b1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
    blurred = cv2.GaussianBlur(img[b0:b1, a0:a1], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return blurred[y0 - b0 : y1 - b0, x0 - a0 : x1 - a0]


def keep_detail(
    before: np.ndarray,
    after: np.ndarray,
    faces: Sequence[Any],
    masks: Sequence[np.ndarray],
    *,
    upscale: float,
    floor: float,
) -> np.ndarray:
    """``after`` with, in each face whose fine detail (the variance of the luma's Laplacian inside its
    ``mask``, warped to the photo) fell below ``floor`` times ``before``'s, just enough of ``before``'s fine
    detail (finer than a Gaussian of one output pixel) put back, inside the mask, to reach that floor: a
    protected model may remove blocks and noise, but not the photo's edges. (H,W,3) uint8 in and out;
    ``before`` is the upscaled photo."""
    out = after
    h, w = after.shape[:2]

    def lap(img: np.ndarray) -> np.ndarray:
        luma = img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114
        return cv2.Laplacian(np.ascontiguousarray(luma), cv2.CV_32F)

    for face, mask in zip(faces, masks, strict=True):
        placed = warp_mask(mask, face.affine, upscale=upscale, shape=(h, w))
        if placed is None:
            continue
        (x0, y0, x1, y1), m = placed
        inner = m > 0.5  # the face itself, not its surroundings
        if inner.sum() < 64:
            continue
        b, a = before[y0:y1, x0:x1].astype(np.float32), out[y0:y1, x0:x1].astype(np.float32)
        fine = (b - _blur(b, 1.0)) - (a - _blur(a, 1.0))
        lb, la, lf = (lap(t)[inner] for t in (b, a, fine))
        la, lf = la - la.mean(), lf - lf.mean()
        goal, have = floor * float(lb.var()), float(la.var())
        if have >= goal or not lf.any():
            continue
        # var(la + k lf) = have + 2k cov + k^2 var(lf): the smallest k in [0, 1] that reaches the goal
        va, cov = float((lf * lf).mean()), float((la * lf).mean())
        disc = cov * cov - va * (have - goal)
        k = 1.0 if disc < 0 else float(np.clip((-cov + np.sqrt(disc)) / va, 0.0, 1.0))
        if out is after:
            out = after.copy()
        out[y0:y1, x0:x1] = np.clip(np.round(a + k * m[..., None] * fine), 0, 255).astype(np.uint8)
    return out
