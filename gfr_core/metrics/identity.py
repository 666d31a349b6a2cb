"""ArcFace identity similarity (the network is :class:`gfr_core.models.arcface.ResNetArcFace`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..io.tensor import from_uint8
from ..models.arcface import ResNetArcFace, to_identity_input

__all__ = ["identity_similarity"]


@torch.no_grad()
def identity_similarity(model: ResNetArcFace, images: np.ndarray, refs: np.ndarray, *, batch: int = 64) -> list[float]:
    """Cosine similarity of ArcFace embeddings, uint8 RGB images (N,S,S,3) against references, one per image."""
    if images.shape != refs.shape:
        raise ValueError(f"images {images.shape} and references {refs.shape} differ in shape")
    dev = next(model.parameters()).device

    def embed(a: np.ndarray) -> Tensor:
        return model(to_identity_input(from_uint8(a, dev), model.size))

    return [
        float(v)
        for i in range(0, len(images), batch)
        for v in F.cosine_similarity(embed(images[i : i + batch]), embed(refs[i : i + batch]), dim=1)
    ]
