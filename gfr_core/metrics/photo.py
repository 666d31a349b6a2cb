"""Whole-photo ground truth: degrade a sharp photo, restore the degraded copy, compare with the original.

Measured on each face of the original (MTCNN, face-shaped region from the five-point template), against
the bicubic upscale of the same degraded copy:

* sharpness ratio: variance of the Laplacian (luma) of the result over that of the bicubic upscale;
* colour: CIE76 dE between the blurred result and the blurred bicubic upscale (a colour shift of the
  face, not its detail), mean over the face region;
* PSNR of the face region against the original, and the same for bicubic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from ..data import degrade as dg
from ..face import detect_faces, estimate_similarity, template, template_face_mask

__all__ = [
    "DEGRADATIONS",
    "Degradation",
    "FaceScore",
    "crop_to_scale",
    "PhotoScore",
    "degrade_photo",
    "evaluate_photos",
    "face_regions",
    "report",
    "score_photo",
    "to_json",
]


@dataclass(frozen=True)
class Degradation:
    """Blur (sigma in original pixels), then area downscale by ``scale``, then JPEG at ``quality``."""

    name: str
    scale: int  # downscale factor; the restore uses the same upscale
    quality: int  # JPEG quality
    blur: float = 0.0  # Gaussian sigma before the downscale, in original pixels


DEGRADATIONS = (
    Degradation("x2-q70", 2, 70),
    Degradation("x2-q40-blur", 2, 40, 2.0),
    Degradation("x4-q60", 4, 60),
    Degradation("x4-q40", 4, 40),
    Degradation("x4-q70-blur", 4, 70, 3.0),
)
"""The degradations the ground-truth tests and ``gfr eval-photos`` use."""


def crop_to_scale(rgb: np.ndarray, scale: int) -> np.ndarray:
    """The photo cut to sides that are multiples of ``scale`` (top-left kept), so that its downscale by
    ``scale``, upscaled by ``scale`` again, lands exactly on its pixel grid."""
    h, w = rgb.shape[:2]
    return rgb[: max(scale, h - h % scale), : max(scale, w - w % scale)]


def degrade_photo(rgb: np.ndarray, d: Degradation) -> np.ndarray:
    """The degraded copy of a sharp (H,W,3) uint8 photo (cut to multiples of ``d.scale`` first: see
    :func:`crop_to_scale`)."""
    rgb = crop_to_scale(rgb, d.scale)
    x = dg.gaussian_blur(rgb, d.blur) if d.blur > 0 else rgb
    h, w = x.shape[:2]
    x = cv2.resize(x, (w // d.scale, h // d.scale), interpolation=cv2.INTER_AREA)
    return dg.jpeg(x, d.quality)


def face_regions(rgb: np.ndarray, *, zoom: float = 1.3, size: int = 128) -> list[tuple[np.ndarray, float]]:
    """(mask (H,W) float32, face size in px) of every face MTCNN finds in a photo (the sharp original)."""
    out = []
    for det in detect_faces(rgb, score_threshold=0.95, min_face_size=24):
        m = estimate_similarity(det.landmarks, template(size, zoom))
        mask = cv2.warpAffine(
            template_face_mask(size, zoom),
            cv2.invertAffineTransform(m),
            rgb.shape[1::-1],
            flags=cv2.INTER_LINEAR,
            borderValue=0,
        )
        out.append((mask, det.size))
    return out


@dataclass(frozen=True)
class FaceScore:
    """One face of one photo under one degradation."""

    face_px: float  # face box size in the original
    sharpness_ratio: float  # Laplacian variance, result / bicubic
    delta_e: float  # CIE76, blurred result vs blurred bicubic, mean over the face
    psnr: float  # face region against the original, dB
    psnr_bicubic: float  # same for the bicubic upscale

    @property
    def psnr_gain(self) -> float:
        return self.psnr - self.psnr_bicubic


@dataclass(frozen=True)
class PhotoScore:
    photo: str
    degradation: str
    faces: list[FaceScore] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(
            photo=self.photo,
            degradation=self.degradation,
            faces=[asdict(f) | {"psnr_gain": f.psnr_gain} for f in self.faces],
        )


def _luma(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _lab(img: np.ndarray, sigma: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(img.astype(np.float32) / 255.0, (0, 0), sigma)
    return cv2.cvtColor(blurred, cv2.COLOR_RGB2LAB)


def score_photo(
    original: np.ndarray, restored: np.ndarray, bicubic: np.ndarray, regions: list[tuple[np.ndarray, float]]
) -> list[FaceScore]:
    """Scores of each face region; the three images are cropped to their common size first."""
    h = min(original.shape[0], restored.shape[0], bicubic.shape[0])
    w = min(original.shape[1], restored.shape[1], bicubic.shape[1])
    o, r, b = original[:h, :w, :3], restored[:h, :w, :3], bicubic[:h, :w, :3]
    lap_r, lap_b = cv2.Laplacian(_luma(r), cv2.CV_32F), cv2.Laplacian(_luma(b), cv2.CV_32F)
    out = []
    for mask, size in regions:
        m = mask[:h, :w] > 0.5
        if m.sum() < 64:
            continue
        sigma = max(1.0, 0.05 * size)
        de = np.linalg.norm(_lab(r, sigma)[m] - _lab(b, sigma)[m], axis=1).mean()

        def face_psnr(x: np.ndarray) -> float:
            mse = np.mean((x[m].astype(np.float64) - o[m].astype(np.float64)) ** 2)
            return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))

        out.append(
            FaceScore(
                face_px=float(size),
                sharpness_ratio=float(lap_r[m].var() / max(lap_b[m].var(), 1e-6)),
                delta_e=float(de),
                psnr=face_psnr(r),
                psnr_bicubic=face_psnr(b),
            )
        )
    return out


def report(scores: list[PhotoScore]) -> str:
    """A Markdown table: one row per face and degradation."""
    rows = [
        "| photo | degradation | face px | sharpness × | dE | PSNR dB | bicubic dB | gain dB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in scores:
        for f in p.faces:
            rows.append(
                f"| {p.photo} | {p.degradation} | {f.face_px:.0f} | {f.sharpness_ratio:.2f} | {f.delta_e:.2f} | "
                f"{f.psnr:.2f} | {f.psnr_bicubic:.2f} | {f.psnr_gain:+.2f} |"
            )
    return "\n".join(rows)


def to_json(scores: list[PhotoScore]) -> str:
    return json.dumps([s.to_json() for s in scores], indent=1)


def evaluate_photos(
    restorer: Any, photos: list[np.ndarray], names: list[str], *, degradations=DEGRADATIONS, fidelity: float = 0.0
) -> list[PhotoScore]:
    """Degrade each sharp photo every way, restore it at the same upscale, and score every face."""
    scores = []
    for rgb, name in zip(photos, names):
        regions = face_regions(rgb)
        for d in degradations:
            lq = degrade_photo(rgb, d)
            res = restorer(lq, upscale=d.scale, fidelity=fidelity)
            bic = cv2.resize(lq, (res.image.shape[1], res.image.shape[0]), interpolation=cv2.INTER_CUBIC)
            scores.append(PhotoScore(name, d.name, score_photo(rgb, res.image, bic, regions)))
    return scores
