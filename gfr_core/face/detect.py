"""Face detection with five landmarks. MTCNN (weights ship inside ``facenet-pytorch``) works offline.

Other detectors are handed in loaded (this layer reads no model files): any object with
``detect(rgb) -> (boxes, scores, landmarks)``, such as :class:`gfr_core.models.RetinaFace` from
``load_model("retinaface-r50")``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch

__all__ = [
    "DETECTORS",
    "SURE_SCORE",
    "Detection",
    "Detector",
    "LandmarkDetector",
    "detect_faces",
    "face_like",
    "screen_detections",
    "select_center_face",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    """One detected face, in photo pixel coordinates."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    landmarks: np.ndarray  # (5,2) (x, y): image-left eye, image-right eye, nose, mouth left, mouth right
    score: float  # detector confidence in [0, 1]

    @property
    def size(self) -> float:
        """Geometric mean of the box width and height."""
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return float(np.sqrt(max(w, 0) * max(h, 0)))


Detector = Callable[[np.ndarray], list[Detection]]
"""A detector maps an (H,W,3) uint8 RGB photo to detections."""


@functools.lru_cache(maxsize=4)
def _mtcnn(device: str, min_face_size: int):
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=min_face_size, device=torch.device(device), post_process=False)


def _detect_mtcnn(image: np.ndarray, *, device: str, min_face_size: int) -> list[Detection]:
    net = _mtcnn(device, max(8, int(min_face_size)))
    with torch.inference_mode():
        boxes, probs, points = net.detect(image, landmarks=True)
    if boxes is None:
        return []
    return [
        Detection(box=b.astype(np.float64), landmarks=p.astype(np.float64), score=float(s))
        for b, s, p in zip(boxes, probs, points)
    ]


class LandmarkDetector(Protocol):
    """A loaded detector network: (H,W,3) uint8 RGB -> (boxes (N,4), scores (N,), landmarks (N,5,2)) in pixels."""

    def detect(self, rgb: np.ndarray, *, score_threshold: float = ...) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def _detect_with(net: LandmarkDetector, image: np.ndarray) -> list[Detection]:
    boxes, scores, points = net.detect(image, score_threshold=0.5)
    return [
        Detection(box=b.astype(np.float64), landmarks=p.astype(np.float64), score=float(s))
        for b, s, p in zip(boxes, scores, points)
    ]


DETECTORS: dict[str, Callable[..., list[Detection]]] = {"mtcnn": _detect_mtcnn}
"""Detectors known by name: 'mtcnn' works offline (weights inside facenet-pytorch). 'retinaface' is
loaded by the caller (``load_model("retinaface-r50")``) and passed as ``detector=``."""


def detect_faces(
    image: np.ndarray,
    *,
    detector: str | LandmarkDetector = "mtcnn",
    device: str = "cpu",
    score_threshold: float = 0.9,
    min_face_size: float = 16.0,
    max_side: int = 1280,
    screen: bool = True,
) -> list[Detection]:
    """Detect faces and their five landmarks.

    Large photos are searched on a copy whose longer side is ``max_side`` pixels; coordinates are mapped
    back to the full-size photo.

    Args:
        image: (H,W,3) uint8 RGB.
        detector: Name from :data:`DETECTORS`, or a loaded detector (:class:`LandmarkDetector`).
        device: Torch device for the detector network.
        score_threshold: Minimum confidence.
        min_face_size: Minimum face box size, in photo pixels.
        max_side: Longest side the detector sees.
        screen: Drop detections that do not look like faces (:func:`screen_detections`).

    Returns:
        Detections sorted by decreasing box size.
    """
    if isinstance(detector, str) and detector not in DETECTORS:
        hint = " (load it with load_model('retinaface-r50') and pass the model)" if detector == "retinaface" else ""
        raise ValueError(
            f"unknown detector {detector!r}; choose one of {sorted(DETECTORS)} or pass a loaded detector{hint}"
        )
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H,W,3) uint8 RGB, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    sw, sh = round(w * scale), round(h * scale)
    if min(sw, sh) < max(12, min_face_size * scale):
        return []  # smaller than the smallest face the detector can see (a 40000x4 strip: nothing to resize)
    small = image if scale == 1.0 else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    sx, sy = w / small.shape[1], h / small.shape[0]
    if isinstance(detector, str):
        found = DETECTORS[detector](small, device=device, min_face_size=max(8.0, min_face_size * scale))
    else:
        found = _detect_with(detector, small)
    out = []
    for d in found:
        det = Detection(
            box=d.box * np.array([sx, sy, sx, sy]),
            landmarks=d.landmarks * np.array([sx, sy]),
            score=d.score,
        )
        if det.score >= score_threshold and det.size >= min_face_size:
            out.append(det)
    out.sort(key=lambda d: -d.size)
    if screen:
        out, _ = screen_detections(image, out)
    log.debug("detected %d face(s) in %dx%d photo", len(out), w, h)
    return out


SURE_SCORE = 0.98
"""A detection scored at least this is a face whatever it looks like: every face of 600 LFW and UTKFace
validation photos scored above it. Below it, :func:`face_like` decides (the furniture MTCNN finds in the
public-domain photos scores 0.93-0.95)."""

_MAX_LANDMARK_RESIDUAL = 0.6  # real faces: at most 0.38 inter-ocular distances off the template (LFW, UTKFace)
_MIN_SKIN = 0.4  # fraction of skin-coloured pixels between the eyes and the mouth: real faces 0.45 (1st percentile
# of LFW val) to 1; the false detections of the shared photos 0.15-0.32


def face_like(image: np.ndarray, det: Detection) -> tuple[bool, str]:
    """(whether ``det`` looks like a face, why not): its five landmarks must fit the face template (a
    similarity transform away, within 0.6 inter-ocular distances), and a detection scored below
    :data:`SURE_SCORE` in a colour photo must show skin colour between the eyes and the mouth (YCrCb
    chroma 133-180 / 70-130, which holds across skin tones); in a gray photo the score alone decides."""
    from .align import align_face, estimate_similarity, template

    ref = template(64, 1.3)
    m = estimate_similarity(det.landmarks, ref)
    fitted = det.landmarks @ m[:, :2].T + m[:, 2]
    residual = float(np.linalg.norm(fitted - ref, axis=1).max() / np.linalg.norm(ref[1] - ref[0]))
    if residual > _MAX_LANDMARK_RESIDUAL:
        return False, f"its landmarks are not a face's ({residual:.2f} eye distances off)"
    if det.score >= SURE_SCORE:
        return True, ""
    centre = align_face(image, det.landmarks, 64, zoom=1.3).crop[22:46, 18:46]  # cheeks, nose, between the eyes
    ycc = cv2.cvtColor(np.ascontiguousarray(centre), cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.int16)
    cr, cb = ycc[:, 1], ycc[:, 2]
    if max(np.abs(cr - 128).max(), np.abs(cb - 128).max()) <= 3:  # no colour at all: a gray photo
        return True, ""
    skin = float(((cr >= 133) & (cr <= 180) & (cb >= 70) & (cb <= 130)).mean())
    if skin < _MIN_SKIN:
        return False, f"score {det.score:.2f} and no skin colour ({skin:.0%} of its centre)"
    return True, ""


def screen_detections(image: np.ndarray, dets: list[Detection]) -> tuple[list[Detection], list[str]]:
    """(the detections that look like faces, one reason per rejected one) (:func:`face_like`)."""
    kept, why = [], []
    for d in dets:
        ok, reason = face_like(image, d)
        if ok:
            kept.append(d)
        else:
            why.append(reason)
            log.info("rejected a detection at %s: %s", np.round(d.box, 1).tolist(), reason)
    return kept, why


def select_center_face(detections: list[Detection], width: int, height: int) -> list[Detection]:
    """Keep only the face whose box centre is closest to the photo centre (empty stays empty)."""
    if not detections:
        return []
    c = np.array([width / 2, height / 2])
    best = min(detections, key=lambda d: float(np.linalg.norm((d.box[:2] + d.box[2:]) / 2 - c)))
    return [best]
