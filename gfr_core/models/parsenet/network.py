"""ParseNet (Chen et al., PSFR-GAN 2021; used by GFPGAN's helper and GPEN): 19-class face parsing.

Data flow for an input (B,3,S,S) RGB in [-1,1], S = ``size`` (512):

1. ``stem``: reflection-padded 3x3 conv to ``base_ch`` channels, no norm, no activation.
2. ``down``: log2(S / min_feat_size) residual blocks, each halving the resolution (stride-2 second conv)
   and doubling the channels (clipped to [min_ch, max_ch]).
3. ``body``: ``res_depth`` residual blocks at min_feat_size, their sum added to the stem's path.
4. ``up``: as many residual blocks, each doubling the resolution (nearest x2 before the first conv) and
   halving the channels.
5. Two 3x3 heads: ``to_parsing`` (B,num_classes,S,S) logits, and ``to_rgb`` (B,3,S,S) a reconstruction.

Every conv is reflection-padded. A residual block's convs are conv -> BatchNorm (inference statistics)
-> leaky ReLU 0.2 (the second without the ReLU); its skip is the identity, or a plain 3x3 conv (with the
same resampling) where the shape changes.
"""

from __future__ import annotations

import math
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from .config import ParseNetConfig

__all__ = ["ConvNormAct", "ParseNet", "ParseResBlock"]


class ConvNormAct(nn.Module):
    """Reflection-padded 3x3 conv with optional nearest x2 before it or stride 2, BatchNorm and leaky ReLU."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        *,
        resample: Literal["none", "down", "up"] = "none",  # stride-2 conv, or nearest x2 before the conv
        norm: bool = False,  # BatchNorm after the conv (the conv then has no bias)
        act: bool = False,  # leaky ReLU 0.2 last
    ) -> None:
        super().__init__()
        self.resample = resample
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2 if resample == "down" else 1, bias=not norm)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        """(B,in,H,W) -> (B,out,H',W'), H' = H/2 (down), 2H (up) or H."""
        if self.resample == "up":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        if self.bn is not None:
            x = self.bn(x)
        return F.leaky_relu(x, 0.2) if self.act else x


class ParseResBlock(nn.Module):
    """``skip(x) + conv2(conv1(x))``; the resampling happens in conv2 (down) or conv1 (up)."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        *,
        resample: Literal["none", "down", "up"] = "none",  # halve, double or keep the resolution
    ) -> None:
        super().__init__()
        same = resample == "none" and in_channels == out_channels
        self.skip = None if same else ConvNormAct(in_channels, out_channels, resample=resample)
        self.conv1 = ConvNormAct(
            in_channels, out_channels, resample="up" if resample == "up" else "none", norm=True, act=True
        )
        self.conv2 = ConvNormAct(
            out_channels, out_channels, resample="down" if resample == "down" else "none", norm=True
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B,in,H,W) -> (B,out,H',W')."""
        identity = x if self.skip is None else self.skip(x)
        return identity + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """Face parsing network; defaults: facexlib ``parsing_parsenet.pth`` (512 px, 19 classes)."""

    def __init__(
        self,
        *,
        size: int = 512,  # input / output resolution
        min_feat_size: int = 32,  # resolution of the residual body
        base_ch: int = 64,  # stem channels
        num_classes: int = 19,  # parsing labels
        res_depth: int = 10,  # body blocks
        min_ch: int = 32,  # channel clip, lower bound
        max_ch: int = 256,  # channel clip, upper bound
    ) -> None:
        super().__init__()
        self.config = ParseNetConfig(
            size=size,
            min_feat_size=min_feat_size,
            base_ch=base_ch,
            num_classes=num_classes,
            res_depth=res_depth,
            min_ch=min_ch,
            max_ch=max_ch,
        )

        def clip(c: int) -> int:
            return max(min_ch, min(c, max_ch))

        steps = int(math.log2(size // min_feat_size))
        self.stem = ConvNormAct(3, base_ch)
        ch = base_ch  # unclipped, as in the reference: clipping applies per layer
        down = []
        for _ in range(steps):
            down.append(ParseResBlock(clip(ch), clip(ch * 2), resample="down"))
            ch *= 2
        self.down = nn.Sequential(*down)
        self.body = nn.Sequential(*(ParseResBlock(clip(ch), clip(ch)) for _ in range(res_depth)))
        up = []
        for _ in range(steps):
            up.append(ParseResBlock(clip(ch), clip(ch // 2), resample="up"))
            ch //= 2
        self.up = nn.Sequential(*up)
        self.to_rgb = ConvNormAct(clip(ch), 3)
        self.to_parsing = ConvNormAct(clip(ch), num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B,3,S,S) RGB in [-1,1] -> ((B,num_classes,S,S) logits, (B,3,S,S) reconstruction in ~[-1,1])."""
        feat = self.down(self.stem(x))
        x = self.up(feat + self.body(feat))
        return self.to_parsing(x), self.to_rgb(x)
