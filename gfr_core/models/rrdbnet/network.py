"""RRDBNet (Wang et al., ESRGAN 2018; Real-ESRGAN 2021): the x4 background and face-detail upsampler.

Data flow for an input (B,3,H,W) RGB in [0,1] (Real-ESRGAN's range, not [-1,1]):

1. ``conv_first`` 3x3 to ``num_feat`` channels (for scale 2 / 1 the input is pixel-unshuffled first).
2. ``body``: ``num_block`` RRDBs; each is three residual dense blocks (five 3x3 convs, each seeing the
   block input and every earlier output, leaky ReLU 0.2 but after the last), each scaled by 0.2 and added
   to its input, and the RRDB's output is scaled by 0.2 and added to its input again.
3. ``conv_body``, added to the output of step 1.
4. Nearest x2, ``conv_up1`` + leaky ReLU; nearest x2, ``conv_up2`` + leaky ReLU; ``conv_hr`` + leaky ReLU;
   ``conv_last`` to RGB: (B,3,4H/u,4W/u) where the input was unshuffled by u (scale = 4/u).

Module names follow the official ``RRDBNet`` so its state_dict loads with ``strict=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...nn import ConvLayer
from .config import RRDBNetConfig

__all__ = ["RRDB", "RRDBNet", "ResidualDenseBlock"]


def _conv(cin: int, cout: int, act: bool) -> ConvLayer:
    return ConvLayer(cin, cout, 3, equalized=False, activation="lrelu" if act else "linear")


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output ``x + 0.2 * conv5(...)``."""

    def __init__(
        self,
        *,
        num_feat: int = 64,  # input / output channels
        num_grow_ch: int = 32,  # channels each of the first four convs adds
    ) -> None:
        super().__init__()
        g = num_grow_ch
        self.conv1 = _conv(num_feat, g, True)
        self.conv2 = _conv(num_feat + g, g, True)
        self.conv3 = _conv(num_feat + 2 * g, g, True)
        self.conv4 = _conv(num_feat + 3 * g, g, True)
        self.conv5 = _conv(num_feat + 4 * g, num_feat, False)

    def forward(self, x: Tensor) -> Tensor:
        """(B,F,H,W) -> (B,F,H,W)."""
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(conv(torch.cat(feats, 1)))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    """Residual-in-residual dense block: three dense blocks, scaled by 0.2, added to the input."""

    def __init__(
        self,
        *,
        num_feat: int = 64,  # channels
        num_grow_ch: int = 32,  # growth channels of the dense blocks
    ) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat=num_feat, num_grow_ch=num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat=num_feat, num_grow_ch=num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        """(B,F,H,W) -> (B,F,H,W)."""
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    """ESRGAN generator; defaults: Real-ESRGAN x4plus."""

    def __init__(
        self,
        *,
        scale: int = 4,  # output / input size (4; 2 and 1 unshuffle the input first)
        num_feat: int = 64,  # trunk width
        num_block: int = 23,  # RRDB blocks
        num_grow_ch: int = 32,  # growth channels of each dense block
    ) -> None:
        super().__init__()
        self.config = RRDBNetConfig(scale=scale, num_feat=num_feat, num_block=num_block, num_grow_ch=num_grow_ch)
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = _conv(3 * self.unshuffle**2, num_feat, False)
        self.body = nn.Sequential(*(RRDB(num_feat=num_feat, num_grow_ch=num_grow_ch) for _ in range(num_block)))
        self.conv_body = _conv(num_feat, num_feat, False)
        self.conv_up1 = _conv(num_feat, num_feat, True)
        self.conv_up2 = _conv(num_feat, num_feat, True)
        self.conv_hr = _conv(num_feat, num_feat, True)
        self.conv_last = _conv(num_feat, 3, False)

    def forward(self, x: Tensor) -> Tensor:
        """(B,3,H,W) RGB in [0,1] -> (B,3,scale*H,scale*W), nominally in [0,1] (not clamped).

        For scale 2 / 1, H and W must be multiples of 2 / 4.
        """
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest"))
        feat = self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest"))
        return self.conv_last(self.conv_hr(feat))
