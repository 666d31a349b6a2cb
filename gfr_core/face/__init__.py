"""Face pipeline as pure functions: detect -> align -> (restore) -> paste."""

from .align import BORDER_RGB, FFHQ_TEMPLATE_512, AlignedFace, affine_scale, align_face, estimate_similarity, template
from .detect import DETECTORS, Detection, Detector, LandmarkDetector, detect_faces, select_center_face
from .mask import parsing_face_mask, template_face_mask
from .paste import add_correction, face_mask, inverse_affine, paste_face, warp_mask

__all__ = [
    "BORDER_RGB",
    "DETECTORS",
    "FFHQ_TEMPLATE_512",
    "AlignedFace",
    "Detection",
    "Detector",
    "LandmarkDetector",
    "add_correction",
    "affine_scale",
    "align_face",
    "detect_faces",
    "estimate_similarity",
    "face_mask",
    "inverse_affine",
    "parsing_face_mask",
    "paste_face",
    "select_center_face",
    "template",
    "template_face_mask",
    "warp_mask",
]
