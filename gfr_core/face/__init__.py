"""Face pipeline as pure functions: detect -> align -> (restore) -> paste."""

from .align import (
    BORDER_RGB,
    FFHQ_TEMPLATE_512,
    AlignedFace,
    affine_scale,
    align_face,
    antialias_filter,
    area_shrink,
    estimate_similarity,
    shrink_for_warp,
    template,
)
from .detect import (
    DETECTORS,
    SURE_SCORE,
    Detection,
    Detector,
    LandmarkDetector,
    detect_faces,
    face_like,
    screen_detections,
    select_center_face,
)
from .mask import FACE_REGION_512, face_region_mask, parsing_face_mask, template_face_mask
from .paste import add_correction, face_mask, inverse_affine, paste_face, warp_crop, warp_mask

__all__ = [
    "BORDER_RGB",
    "FACE_REGION_512",
    "DETECTORS",
    "FFHQ_TEMPLATE_512",
    "AlignedFace",
    "Detection",
    "Detector",
    "LandmarkDetector",
    "add_correction",
    "affine_scale",
    "align_face",
    "antialias_filter",
    "area_shrink",
    "detect_faces",
    "face_like",
    "screen_detections",
    "SURE_SCORE",
    "estimate_similarity",
    "face_mask",
    "face_region_mask",
    "inverse_affine",
    "parsing_face_mask",
    "paste_face",
    "select_center_face",
    "shrink_for_warp",
    "template",
    "template_face_mask",
    "warp_crop",
    "warp_mask",
]
