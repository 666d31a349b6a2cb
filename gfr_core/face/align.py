"""Face alignment: a similarity transform from five landmarks to the FFHQ template, and the warp."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "FFHQ_TEMPLATE_512",
    "BORDER_RGB",
    "AlignedFace",
    "affine_scale",
    "align_face",
    "estimate_similarity",
    "template",
]

FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],  # image-left eye (the subject's right eye)
        [318.90277, 240.19360],  # image-right eye
        [256.63416, 314.01935],  # nose tip
        [201.26117, 371.41043],  # image-left mouth corner
        [313.08905, 371.15118],  # image-right mouth corner
    ],
    dtype=np.float64,
)
"""Five-point (x, y) template of 512x512 FFHQ-aligned faces, as used by GFPGAN's face helper."""

BORDER_RGB = (132, 133, 135)
"""Fill colour outside the photo when a crop extends past its border (GFPGAN's value, in RGB)."""


def template(face_size: int, zoom: float = 1.0) -> np.ndarray:
    """The (5,2) FFHQ template scaled to ``face_size`` pixels.

    ``zoom > 1`` enlarges the face about the crop centre (a tighter crop); the embedded models use it to
    spend their few pixels on the face rather than the background.
    """
    return ((FFHQ_TEMPLATE_512 - 256.0) * zoom + 256.0) * (face_size / 512.0)


def affine_scale(m: np.ndarray) -> float:
    """The linear scale of a (2,3) similarity transform: destination pixels per source pixel."""
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Closed form (Umeyama 1991) without reflection.

    Args:
        src: (N,2) points, N >= 2.
        dst: (N,2) points.

    Returns:
        (2,3) float64 matrix M with ``dst ~ M @ [x, y, 1]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("landmarks are degenerate (all at one point)")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = (sig * np.diag(e)).sum() / var_s
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


@dataclass(frozen=True)
class AlignedFace:
    """A face crop warped to the template, and the transform that produced it."""

    crop: np.ndarray  # (S,S,3) uint8 RGB
    affine: np.ndarray  # (2,3) photo -> crop


def align_face(
    image: np.ndarray, landmarks: np.ndarray, face_size: int, *, zoom: float = 1.0, antialias: bool = True
) -> AlignedFace:
    """Warp the face with these five landmarks to a ``face_size`` crop aligned to the FFHQ template.

    Args:
        image: (H,W,3) uint8 RGB photo.
        landmarks: (5,2) (x, y) in photo pixels, ordered as :data:`FFHQ_TEMPLATE_512`.
        face_size: Crop size.
        zoom: Template zoom (see :func:`template`).
        antialias: Where the face is larger than the crop, low-pass the photo around it first (a Gaussian
            matched to the shrink factor), so that a 300 px face does not alias into a 64 px crop.
    """
    m = estimate_similarity(landmarks, template(face_size, zoom))
    src, warp = image, m
    shrink = affine_scale(m)  # crop pixels per photo pixel
    if antialias and shrink < 0.9:
        sigma = 0.45 * float(np.sqrt(1.0 / shrink**2 - 1.0))
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [face_size, 0, 1], [0, face_size, 1], [face_size, face_size, 1]], np.float64)
        pts = corners @ inv.T
        pad = int(np.ceil(3 * sigma)) + 2
        h, w = image.shape[:2]
        x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + pad, (w, h))
        if x1 > x0 and y1 > y0:
            src = cv2.GaussianBlur(image[y0:y1, x0:x1], (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            warp = m.copy()
            warp[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    crop = cv2.warpAffine(
        src,
        warp,
        (face_size, face_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BORDER_RGB,
    )
    return AlignedFace(crop=crop, affine=m)
