"""ArcFace identity network (the IR-ResNet-18 GFPGAN trains its identity loss with) and identity similarity.

The layout is the one of GFPGAN's released ``arcface_resnet18.pth`` (``ResNetArcFace`` with ``IRBlock``,
layers ``[2,2,2,2]``, no squeeze-excitation): input (B,1,128,128) grayscale in [-1,1], a 3x3 stem with
BatchNorm, PReLU and a 2x max-pool, four stages of improved residual blocks (BN before the first conv,
PReLU between, BN after the second), BN, a linear layer from the 512x8x8 map to 512, BN: a 512-d
embedding. Identity similarity is the cosine between the embeddings of a restored face and its ground
truth (1 = same identity; CodeFormer reports the angle, ``arccos`` of it, in degrees).

Nothing downloads: :meth:`ResNetArcFace.from_file` finds the file with
:func:`gfr_core.models.local_weights.find_weights` (``GFR_ARCFACE_WEIGHTS`` or torch's hub cache).

Caveat: the released file was never available where this was written. The key names and shapes follow
GFPGAN's layout and a file that does not match them is refused, but the forward has not been compared
with GFPGAN's on the real weights.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from ..local_weights import check_state, find_weights, load_pth

__all__ = ["IRBlock", "ResNetArcFace", "to_identity_input"]


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class IRBlock(nn.Module):
    """Improved residual block: BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus the skip, PReLU."""

    def __init__(
        self,
        *,
        in_channels: int,  # channels of the input
        out_channels: int,  # channels of the output
        stride: int = 1,  # stride of the second conv (2 halves the map)
    ) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, in_channels)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.prelu = nn.PReLU()
        self.conv2 = _conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(self.bn0(x))))))
        return self.prelu(h + (x if self.downsample is None else self.downsample(x)))


class ResNetArcFace(nn.Module):
    """(B,1,128,128) grayscale in [-1,1] -> (B,512) identity embedding. Defaults: GFPGAN's arcface_resnet18."""

    def __init__(
        self,
        *,
        layers: tuple[int, ...] = (2, 2, 2, 2),  # blocks per stage
        channels: tuple[int, ...] = (64, 128, 256, 512),  # channels per stage (stages 2+ halve the map)
        size: int = 128,  # input size (the linear layer fixes it)
        embed_dim: int = 512,  # embedding size
    ) -> None:
        super().__init__()
        if len(layers) != len(channels):
            raise ValueError(f"layers {layers} and channels {channels} must have the same length")
        self.size = size
        self.conv1 = nn.Conv2d(1, channels[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        cin = channels[0]
        for i, (n, c) in enumerate(zip(layers, channels)):
            blocks = [
                IRBlock(in_channels=cin if j == 0 else c, out_channels=c, stride=2 if (i > 0 and j == 0) else 1)
                for j in range(n)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = c
        self.num_stages = len(layers)
        final = size // 2 ** len(layers)  # the stem's max-pool and the strided stages 2..N
        self.bn4 = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout()
        self.fc5 = nn.Linear(cin * final * final, embed_dim)
        self.bn5 = nn.BatchNorm1d(embed_dim)
        self.eval()  # a metric network: BatchNorm uses its running statistics

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> ResNetArcFace:
        """Load GFPGAN's ``arcface_resnet18.pth`` (a ``module.`` prefix from DataParallel is removed)."""
        src = find_weights("arcface", path)
        m = cls()
        state = {k.removeprefix("module."): v for k, v in load_pth(src).items()}
        check_state(state, m, src, "ArcFace IR-ResNet-18 weights (GFPGAN's arcface_resnet18.pth)")
        m.load_state_dict(state, strict=True)
        return m.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        """(B,1,size,size) in [-1,1] -> (B,embed_dim)."""
        if x.shape[1:] != (1, self.size, self.size):
            raise ValueError(
                f"ArcFace expects (B,1,{self.size},{self.size}), got {tuple(x.shape)}; use to_identity_input()"
            )
        h = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            h = getattr(self, f"layer{i + 1}")(h)
        h = self.dropout(self.bn4(h))
        return self.bn5(self.fc5(h.flatten(1)))


def to_identity_input(x: Tensor, size: int = 128) -> Tensor:
    """RGB (B,3,H,W) in [-1,1] -> grayscale (B,1,size,size) in [-1,1] (ITU-R 601 luma, bilinear), as GFPGAN feeds it."""
    gray = (0.2989 * x[:, 0] + 0.5870 * x[:, 1] + 0.1140 * x[:, 2]).unsqueeze(1)
    return F.interpolate(gray, size=(size, size), mode="bilinear", align_corners=False)
