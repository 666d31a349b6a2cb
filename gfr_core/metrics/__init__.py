"""Metrics: image metrics, LPIPS, FID, ArcFace identity, and the evaluation harness (``gfr eval``).

Public as ``gfr_core.evaluate`` too (the name the notebooks and the app use).
"""

from .fid import fid_from_features, frechet_distance
from .harness import EvalResult, degradation_sweep, degrade_face, evaluate, load_eval_faces, restore_all
from .identity import identity_similarity
from .image import face_landmarks, landmark_distance, psnr, ssim
from .oracle import OracleFace, oracle_faces, oracle_report
from .perceptual import lpips_distances

__all__ = [
    "EvalResult",
    "OracleFace",
    "degradation_sweep",
    "degrade_face",
    "evaluate",
    "face_landmarks",
    "fid_from_features",
    "frechet_distance",
    "identity_similarity",
    "landmark_distance",
    "load_eval_faces",
    "lpips_distances",
    "oracle_faces",
    "oracle_report",
    "psnr",
    "restore_all",
    "ssim",
]
