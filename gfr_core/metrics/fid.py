"""Fréchet Inception Distance of feature sets (the network is :class:`gfr_core.models.inception.InceptionFeatures`)."""

from __future__ import annotations

import numpy as np

__all__ = ["fid_from_features", "frechet_distance"]


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1-mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2)``, where the last trace is computed as the sum of
    the square roots of the eigenvalues of ``S1^1/2 S2 S1^1/2`` (symmetric, so this stays real and
    stable for the singular covariances of small sets).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ s2 @ root1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    return float(np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two sets of features (N,D) and (M,D) (mean and unbiased covariance of each)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(a)} and {len(b)}")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
