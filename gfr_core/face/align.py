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
    "antialias_filter",
    "area_shrink",
    "estimate_similarity",
    "shrink_for_warp",
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


def antialias_filter(img: np.ndarray, scale: float, *, headroom: float = 1.5) -> np.ndarray:
    """Low-pass ``img`` for resampling it ``scale`` (< 1) times smaller (float32 out, same shape).

    A separable Lanczos-3 windowed sinc cut at ``headroom`` times the smaller grid's Nyquist frequency:
    what the smaller grid holds keeps its contrast (a Gaussian matched to the shrink, or a cut at exactly
    Nyquist, softens it: 14-17 dB lost on a 512 px crop of a 75 px face, measured with the perfect restorer);
    what lies far above it, and would alias into coarse moire, is removed.
    """
    a = np.ascontiguousarray(img, np.float32)
    s = scale * headroom
    if s >= 0.999:
        return a
    x = np.arange(-int(np.ceil(3 / s)), int(np.ceil(3 / s)) + 1, dtype=np.float64) * s
    k = np.sinc(x) * np.sinc(x / 3)
    k = (k / k.sum()).astype(np.float32)
    return cv2.sepFilter2D(a, -1, k, k, borderType=cv2.BORDER_REFLECT)


def area_shrink(img: np.ndarray, warp: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-resize ``img`` by ``factor`` (< 1) and fold the resize into the (2,3) ``warp`` (img px ->
    destination px), pixel-centre exact: the returned warp maps the smaller image where ``warp`` mapped
    the original."""
    h, w = img.shape[:2]
    sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    fx, fy = w / sw, h / sh  # original px per new px
    to_old = np.array([[fx, 0, 0.5 * fx - 0.5], [0, fy, 0.5 * fy - 0.5], [0, 0, 1]], np.float64)
    return small, warp @ to_old


def shrink_for_warp(img: np.ndarray, warp: np.ndarray, *, area_below: float = 1 / 16) -> tuple[np.ndarray, np.ndarray]:
    """Prepare ``img`` for a Lanczos warp by ``warp`` (img px -> destination px) that shrinks it: float32
    ``img`` and the ``warp`` to use.

    Shrinking by less than 0.66 gets :func:`antialias_filter`; below ``area_below``, an area resize to four
    times the destination's density comes first (folded into the warp), so that the filter stays short.
    """
    img = np.ascontiguousarray(img, np.float32)
    density = affine_scale(warp)  # destination px per img px
    if density >= 0.66:
        return img, warp
    if density < area_below:
        img, warp = area_shrink(img, warp, 4.0 * density)
    return antialias_filter(img, affine_scale(warp)), warp


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
        antialias: Where the face is larger than the crop, low-pass the photo around it first
            (:func:`shrink_for_warp`), so that a 300 px face does not alias into a 64 px crop.

    The warp is Lanczos (measured with the perfect restorer of ``gfr eval-photos --oracle``: bilinear
    crops cost 4-6 dB of a 512 px restorer's gain).
    """
    m = estimate_similarity(landmarks, template(face_size, zoom))
    src, warp = image, m
    shrink = affine_scale(m)  # crop pixels per photo pixel
    if antialias and shrink < 0.66:  # only the photo around the face is filtered
        inv = cv2.invertAffineTransform(m)
        corners = np.array([[0, 0, 1], [face_size, 0, 1], [0, face_size, 1], [face_size, face_size, 1]], np.float64)
        pts = corners @ inv.T
        pad = int(np.ceil(3 / shrink)) + 2
        h, w = image.shape[:2]
        x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + pad, (w, h))
        if x1 > x0 and y1 > y0:
            warp = m.copy()
            warp[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
            # the area resize starts at 8x here (a photo region is larger than a crop: the filter would be long)
            src, warp = shrink_for_warp(image[y0:y1, x0:x1], warp, area_below=1 / 8)
            src = np.clip(np.round(src), 0, 255).astype(np.uint8)
    crop = cv2.warpAffine(
        src,
        warp,
        (face_size, face_size),
        flags=cv2.INTER_LANCZOS4,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BORDER_RGB,
    )
    return AlignedFace(crop=crop, affine=m)
