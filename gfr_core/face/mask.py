"""Face-shaped blend masks in aligned-crop coordinates: from the five-point template, or from face parsing.

The template mask covers the face and the forehead (an ellipse through the template's eyes, nose and mouth,
extended upwards), not the hair or the background. It lives in crop coordinates, so it is warped with the
same transform as the face and its feathering scales with the face's size in the photo.

The parsing mask keeps the pixels a parsing network labels as face (skin, brows, eyes, nose, mouth...),
feathered by two Gaussians of 11/512 of the crop after a border of 10/512 is cleared (GFPGAN's numbers).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import cv2
import numpy as np

from .align import template

__all__ = ["FACE_REGION_512", "face_region_mask", "parsing_face_mask", "template_face_mask"]

FACE_REGION_512 = (100.0, 72.0, 412.0, 490.0)
"""(x0, y0, x1, y1) of the region a restorer's face covers in a 512 px FFHQ-aligned crop: the face box of a
detector (MTCNN's boxes land in x 110-390, y 95-480 here, median) widened to the ears' edge and the upper
forehead, down to the chin."""


@functools.lru_cache(maxsize=16)
def _mask(face_size: int, zoom: float, feather: float) -> np.ndarray:
    t = template(face_size, zoom)
    eyes, nose, mouth = t[:2].mean(0), t[2], t[3:].mean(0)
    eye_dist = float(np.linalg.norm(t[1] - t[0]))
    eye_to_mouth = float(mouth[1] - eyes[1])
    # Ellipse: centre a little above the nose; half-width 1.1 eye distances (to the cheeks, inside the ears),
    # half-height from the chin (0.9 eye-mouth below the mouth) to the upper forehead.
    cx = float(nose[0])
    top, bottom = eyes[1] - 1.35 * eye_to_mouth, mouth[1] + 0.9 * eye_to_mouth
    cy, ry = (top + bottom) / 2, (bottom - top) / 2
    rx = 1.1 * eye_dist
    idx = np.arange(face_size, dtype=np.float64) + 0.5
    y, x = np.meshgrid(idx, idx, indexing="ij")
    r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)  # 1 on the ellipse
    ramp = feather * eye_dist / min(rx, ry)  # feather width as a fraction of the radius
    s = np.clip((1.0 - r) / max(ramp, 1e-6) + 0.5, 0.0, 1.0)
    s = s * s * (3 - 2 * s)  # smoothstep across the ellipse's border
    out = s.astype(np.float32)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=16)
def _region_mask(face_size: int, zoom: float, feather: float, border: float) -> np.ndarray:
    s = float(face_size)
    box = (np.asarray(FACE_REGION_512) - 256.0) * zoom + 256.0  # the template zooms about the crop centre
    x0, y0, x1, y1 = box * (s / 512.0)
    idx = np.arange(face_size, dtype=np.float64) + 0.5
    ramp = max(feather * s, 1.0)

    def axis(lo: float, hi: float) -> np.ndarray:
        d = np.minimum(idx - (lo - ramp), (hi + ramp) - idx) / ramp  # 1 at the region's edge, 0 a ramp outside
        t = np.clip(d, 0.0, 1.0)
        b = np.clip(np.minimum(idx, s - idx) / max(border * s, 1.0), 0.0, 1.0)  # and 0 at the crop's border
        t = np.minimum(t, b)
        return t * t * (3 - 2 * t)

    out = np.outer(axis(y0, y1), axis(x0, x1)).astype(np.float32)
    out.setflags(write=False)
    return out


def face_region_mask(face_size: int, zoom: float = 1.0, *, feather: float = 0.06, border: float = 0.03) -> np.ndarray:
    """(S,S) float32 in [0,1]: 1 on the whole face a restorer returns (forehead to chin, ears' edge:
    :data:`FACE_REGION_512`), feathered *outside* it over ``feather * S`` px, and 0 at the crop's border.

    Args:
        face_size: Crop size S.
        zoom: The template zoom of the crop (see :func:`gfr_core.face.template`).
        feather: Width of the ramp outside the region, as a fraction of S.
        border: Width of the ramp down to 0 at the crop's border, as a fraction of S.
    """
    return _region_mask(int(face_size), float(zoom), float(feather), float(border))


def template_face_mask(face_size: int, zoom: float = 1.0, *, feather: float = 0.5) -> np.ndarray:
    """(S,S) float32 in [0,1]: 1 on the face and forehead, 0 on hair and background, a smooth border.

    Args:
        face_size: Crop size S.
        zoom: The template zoom of the crop (see :func:`gfr_core.face.template`).
        feather: Width of the border ramp in eye distances (it scales with the face).
    """
    return _mask(int(face_size), float(zoom), float(feather))


def parsing_face_mask(labels: np.ndarray, face_labels: Sequence[int], *, out_size: int | None = None) -> np.ndarray:
    """(P,P) integer labels of one aligned crop -> (S,S) float32 in [0,1], S = ``out_size`` (default P).

    Args:
        labels: Per-pixel class of a parsing network (the argmax of its logits).
        face_labels: The classes that belong to the face.
        out_size: Crop size of the mask (area-resampled from P).
    """
    if labels.ndim != 2 or labels.shape[0] != labels.shape[1]:
        raise ValueError(f"labels must be a square (P,P) integer array, got shape {labels.shape}")
    p = labels.shape[0]
    m = np.isin(labels, np.asarray(face_labels)).astype(np.float32)
    border = round(10 * p / 512)
    if border:
        m[:border], m[-border:], m[:, :border], m[:, -border:] = 0, 0, 0, 0
    sigma = 11 * p / 512
    for _ in range(2):
        m = cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    if out_size is not None and out_size != p:
        m = cv2.resize(m, (int(out_size), int(out_size)), interpolation=cv2.INTER_AREA)
    return np.clip(m, 0.0, 1.0)
