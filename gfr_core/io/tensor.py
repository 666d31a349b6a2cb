"""The one conversion between images and tensors: uint8 (N,H,W,3) RGB <-> (B,3,H,W) float in [-1,1]."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["from_uint8", "to_uint8"]


def from_uint8(images: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(N,H,W,3) or (H,W,3) uint8 RGB -> (B,3,H,W) float32 in [-1,1] (B=1 for a single image)."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"expected (N,H,W,3) or (H,W,3) uint8 RGB, got {a.shape} {a.dtype}")
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(np.ascontiguousarray(a)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(images: Tensor) -> np.ndarray:
    """(B,3,H,W) in [-1,1] (clamped) -> (B,H,W,3) uint8 RGB, rounded to the nearest level."""
    return (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    )
