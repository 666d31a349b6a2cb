"""Blend masks of restored faces: the parsed face (ParseNet) where a parser is loaded, else the face region
of the template."""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ..face import face_region_mask, parsing_face_mask
from ..io.tensor import from_uint8
from ..models.parsenet import FACE_LABELS

__all__ = ["parsed_face_masks"]

log = logging.getLogger(__name__)


def parsed_face_masks(
    parser: nn.Module | None, faces: list[Any], *, face_size: int, crop_zoom: float
) -> list[np.ndarray]:
    """(S,S) float32 blend mask per face (its ``restored`` crop): the parsed face, or without ``parser`` the
    face region (:func:`gfr_core.face.face_region_mask`). A parse that finds less than a quarter of the
    template's face area (a profile, an occluded face) falls back to the face region, with a warning."""
    fallback = face_region_mask(face_size, crop_zoom)
    if parser is None or not faces:
        return [fallback] * len(faces)
    device = next(parser.parameters()).device
    p = int(parser.config.size)
    masks = []
    for i in range(0, len(faces), 4):  # a 512 px parse holds ~0.1 GB of activations per face
        crops = np.stack([cv2.resize(f.restored, (p, p), interpolation=cv2.INTER_CUBIC) for f in faces[i : i + 4]])
        with torch.inference_mode():
            logits = parser(from_uint8(crops, device))[0]
        for labels in logits.argmax(1).cpu().numpy():
            m = parsing_face_mask(labels, FACE_LABELS, out_size=face_size)
            if float(m.mean()) < 0.25 * float(fallback.mean()):
                log.warning("face parsing found almost no face; using the template mask for this face")
                m = fallback
            masks.append(m)
    return masks
