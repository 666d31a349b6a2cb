"""Paste restored faces (or their corrections) back into the (upscaled) photo with a feathered mask.

Each face is warped back with the inverse of its alignment transform, only inside the bounding box of
its footprint (memory and time scale with the face, not the photo). The blend mask is built in face
coordinates (a square with a smooth ramp towards its border), so it is warped with exactly the same
transform as the face and its feathering scales with the face.
"""

from __future__ import annotations

import cv2
import numpy as np

from .align import affine_scale, area_shrink, shrink_for_warp

__all__ = ["add_correction", "face_mask", "inverse_affine", "paste_face", "warp_crop", "warp_mask"]


def face_mask(face_size: int, *, feather: float = 0.08) -> np.ndarray:
    """(S,S) float32 mask: 1 in the centre, ramping smoothly to 0 over ``feather * S`` pixels at the border."""
    ramp = max(1.0, feather * face_size)
    idx = np.arange(face_size, dtype=np.float32) + 0.5
    d = np.minimum(idx, face_size - idx)  # distance to the nearest border, per axis
    t = np.clip(d / ramp, 0.0, 1.0)
    t = t * t * (3 - 2 * t)  # smoothstep
    return np.outer(t, t).astype(np.float32)


def inverse_affine(affine: np.ndarray, upscale: float) -> np.ndarray:
    """Map crop pixels to pixels of the photo upscaled by ``upscale`` (pixel-centre exact)."""
    inv = cv2.invertAffineTransform(affine) * upscale
    inv[:, 2] += 0.5 * upscale - 0.5
    return inv


def _shrink_first(arrays: list[np.ndarray], inv: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Where a crop lands much smaller than itself, area-downsample it first (warping alone aliases), keeping
    2x oversampling for the warp, and fold the resize into the transform (pixel-centre exact)."""
    s = arrays[0].shape[0]
    shrink = affine_scale(inv)
    if shrink >= 0.5:
        return arrays, inv, s
    factor = max(8, int(round(s * shrink * 2))) / s
    shrunk = [area_shrink(a, inv, factor) for a in arrays]
    return [a for a, _ in shrunk], shrunk[0][1], shrunk[0][0].shape[0]


def _footprint(inv: np.ndarray, s: int, shape: tuple[int, int]) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Canvas box (x0, y0, x1, y1) an (s,s) crop lands in under ``inv``, and ``inv`` relative to that box."""
    corners = np.array([[0, 0, 1], [s, 0, 1], [0, s, 1], [s, s, 1]], np.float64)
    pts = corners @ inv.T
    h, w = shape
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    local = inv.copy()
    local[:, 2] -= (x0, y0)
    return (int(x0), int(y0), int(x1), int(y1)), local


def add_correction(
    canvas: np.ndarray, correction: np.ndarray, affine: np.ndarray, *, upscale: float, mask: np.ndarray
) -> None:
    """Add a smooth crop-space ``correction`` (S,S,C) float32, weighted by ``mask`` (S,S), to a float32 canvas.

    The correction is band-limited to the crop's resolution, so it is warped with bicubic interpolation
    (no faceting where it lands larger than the crop). Only the face's footprint is touched.
    """
    (weighted,), inv, s = _shrink_first([correction * mask[..., None]], inverse_affine(affine, upscale))
    region = _footprint(inv, s, canvas.shape[:2])
    if region is None:
        return
    (x0, y0, x1, y1), local = region
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(weighted, local, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    canvas[y0:y1, x0:x1] += warped.reshape(y1 - y0, x1 - x0, -1)


def warp_crop(crop: np.ndarray, affine: np.ndarray, *, upscale: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """A crop warped back into the ``box`` (x0, y0, x1, y1) of the photo upscaled ``upscale`` times, float32.

    Lanczos resampling; where the crop lands smaller than itself, a flat-passband low-pass first
    (:func:`~gfr_core.face.shrink_for_warp`), so nothing aliases and no detail the photo can hold is
    softened. Outside the crop the result is 0.

    Args:
        crop: (S,S,C) or (S,S) array in crop coordinates (any dtype; float32 out).
        affine: (2,3) photo -> crop transform of the face.
        upscale: Canvas scale relative to the photo the affine refers to.
        box: Canvas region to fill.
    """
    a, inv = shrink_for_warp(crop, inverse_affine(affine, upscale))
    x0, y0, x1, y1 = box
    local = inv.copy()
    local[:, 2] -= (x0, y0)
    out = cv2.warpAffine(a, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_CONSTANT)
    return out.reshape(y1 - y0, x1 - x0, *a.shape[2:])


def warp_mask(
    mask: np.ndarray, affine: np.ndarray, *, upscale: float, shape: tuple[int, int], threshold: float = 1e-3
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """A crop-space (S,S) mask warped into the photo upscaled ``upscale`` times, cut to where it is non-zero.

    Returns ((x0, y0, x1, y1), (y1-y0, x1-x0) float32) in canvas pixels of a canvas of ``shape`` (H, W),
    or None when the mask lands outside it.
    """
    (m,), inv, s = _shrink_first([np.ascontiguousarray(mask, np.float32)], inverse_affine(affine, upscale))
    region = _footprint(inv, s, shape)
    if region is None:
        return None
    (x0, y0, x1, y1), local = region
    wm = cv2.warpAffine(m, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    ys, xs = np.nonzero(wm > threshold)
    if len(ys) == 0:
        return None
    ty0, ty1, tx0, tx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = (x0 + int(tx0), y0 + int(ty0), x0 + int(tx1), y0 + int(ty1))
    return box, wm[ty0:ty1, tx0:tx1]


def paste_face(
    canvas: np.ndarray, face: np.ndarray, affine: np.ndarray, *, upscale: float, mask: np.ndarray | None = None
) -> None:
    """Blend ``face`` into ``canvas`` in place: ``canvas = m * warped_face + (1 - m) * canvas``.

    Args:
        canvas: (H,W,3) uint8 photo already upscaled by ``upscale``.
        face: (S,S,3) uint8 restored crop.
        affine: (2,3) photo -> crop transform used for alignment (at the original photo scale).
        upscale: Canvas scale relative to the photo the affine refers to.
        mask: (S,S) float mask in face coordinates (default :func:`face_mask`).
    """
    m = face_mask(face.shape[0]) if mask is None else mask
    (face, m), inv, s = _shrink_first([face, m], inverse_affine(affine, upscale))
    region = _footprint(inv, s, canvas.shape[:2])
    if region is None:
        return  # entirely outside the photo
    (x0, y0, x1, y1), local = region
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(face, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    wm = cv2.warpAffine(m, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    wm = wm[..., None]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    canvas[y0:y1, x0:x1] = np.clip(np.round(wm * warped + (1 - wm) * region), 0, 255).astype(np.uint8)
