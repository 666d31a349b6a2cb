"""Spatial feature transform (SFT): per-pixel affine modulation of decoder features by encoder features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import ConvLayer

__all__ = ["apply_sft", "ConditionBranch"]


def apply_sft(x: Tensor, scale: Tensor, shift: Tensor, *, half: bool) -> Tensor:
    """Modulate features with a spatial scale and shift, ``x * scale + shift`` (the scale is used as is).

    Args:
        x: (B,C,H,W) decoder features.
        scale: (B,C/2,H,W) if ``half`` else (B,C,H,W).
        shift: Same shape as ``scale``.
        half: GFPGAN's channel-split SFT: the first half of the channels passes unchanged, the second
            half is modulated, and the two are concatenated in that order.

    Returns:
        (B,C,H,W).
    """
    if not half:
        return x * scale + shift
    keep, mod = torch.split(x, x.shape[1] // 2, dim=1)
    return torch.cat([keep, mod * scale + shift], dim=1)


class ConditionBranch(nn.Module):
    """Two 3x3 convs with a leaky ReLU between them, predicting one SFT tensor (scale or shift)."""

    def __init__(
        self,
        in_channels: int,  # U-Net feature channels
        out_channels: int,  # SFT channels: decoder width / 2 with channel split, else decoder width
        *,
        equalized: bool = False,  # original GFPGANv1 uses equalized convs and a sqrt(2)-gain lrelu
        bias_init: float = 0.0,  # initial bias of the last conv (1 for a scale branch)
    ) -> None:
        super().__init__()
        act = "scaled_lrelu" if equalized else "lrelu"
        self.conv1 = ConvLayer(in_channels, in_channels, 3, activation=act, equalized=equalized)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, equalized=equalized, bias_init=bias_init)

    def forward(self, feat: Tensor) -> Tensor:
        """(B,in,H,W) -> (B,out,H,W)."""
        return self.conv2(self.conv1(feat))
