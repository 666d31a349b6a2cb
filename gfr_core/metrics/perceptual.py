"""LPIPS distances of uint8 images (the network is :class:`gfr_core.models.vgg.LPIPS`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io.tensor import from_uint8

__all__ = ["lpips_distances"]


def lpips_distances(model: Any, images: np.ndarray, refs: np.ndarray, *, batch: int = 64) -> list[float]:
    """LPIPS of uint8 images (N,S,S,3) against references, one value per image."""
    dev = next(model.parameters()).device
    return [
        float(v)
        for i in range(0, len(images), batch)
        for v in model(from_uint8(images[i : i + batch], dev), from_uint8(refs[i : i + batch], dev))
    ]
