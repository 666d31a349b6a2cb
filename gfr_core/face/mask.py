"""A face-shaped blend mask in aligned-crop coordinates, built from the five-point template.

The mask covers the face and the forehead (an ellipse through the template's eyes, nose and mouth,
extended upwards), not the hair or the background. It lives in crop coordinates, so it is warped with the
same transform as the face and its feathering scales with the face's size in the photo.
"""

from __future__ import annotations

import functools

import numpy as np

from .align import template

__all__ = ["template_face_mask"]


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


def template_face_mask(face_size: int, zoom: float = 1.0, *, feather: float = 0.5) -> np.ndarray:
    """(S,S) float32 in [0,1]: 1 on the face and forehead, 0 on hair and background, a smooth border.

    Args:
        face_size: Crop size S.
        zoom: The template zoom of the crop (see :func:`gfr_core.face.template`).
        feather: Width of the border ramp in eye distances (it scales with the face).
    """
    return _mask(int(face_size), float(zoom), float(feather))
