"""RetinaFace-R50: the face detector with five landmarks GFPGAN uses (network, config, converter, card)."""

from ..family import Family
from .cards import CARDS
from .config import RetinaFaceConfig
from .convert import CONVERTERS
from .network import RetinaFace, decode_boxes, decode_landmarks, prior_boxes

FAMILY = Family(
    arch="retinaface", network=RetinaFace, config=RetinaFaceConfig, task="detect", converters=CONVERTERS, cards=CARDS
)

__all__ = ["FAMILY", "RetinaFace", "RetinaFaceConfig", "decode_boxes", "decode_landmarks", "prior_boxes"]
