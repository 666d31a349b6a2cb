"""Image metrics of aligned faces: PSNR, SSIM (luma) and the landmark distance (MTCNN)."""

from __future__ import annotations

import cv2
import numpy as np

from ..face import detect_faces, template

__all__ = ["face_landmarks", "landmark_distance", "psnr", "ssim"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (inf if identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if img.ndim == 3 else img.astype(np.float64)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM on luma with an 11x11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03, valid region only."""
    x, y = _luma(a), _luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    w = g @ g.T

    def filt(z: np.ndarray) -> np.ndarray:
        return cv2.filter2D(z, -1, w, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def face_landmarks(face: np.ndarray) -> np.ndarray | None:
    """MTCNN's five landmarks of an aligned face (found on a 4x enlarged copy), or None."""
    big = cv2.resize(face, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    dets = detect_faces(big, min_face_size=40, score_threshold=0.8, screen=False)  # landmarks of a known face
    return None if not dets else dets[0].landmarks / 4


def landmark_distance(out: np.ndarray, gt_landmarks: np.ndarray, *, zoom: float) -> float:
    """Mean landmark error (pixels) of ``out`` against ground-truth landmarks; a missed face costs the eye spacing."""
    lm = face_landmarks(out)
    if lm is None:
        t = template(out.shape[0], zoom)
        return float(np.linalg.norm(t[1] - t[0]))
    return float(np.linalg.norm(lm - gt_landmarks, axis=1).mean())
