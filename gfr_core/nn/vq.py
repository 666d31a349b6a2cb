"""Blocks of the VQGAN family (taming-transformers' layout), shared by the codebook priors: CodeFormer's
VQAutoEncoder and RestoreFormer(++). GroupNorm(32, eps 1e-6) with swish, residual blocks, pad-then-stride
downsampling, nearest upsampling, spatial (multi-head, optionally cross) attention, and the nearest-code
vector quantizer. Parameter names follow the RestoreFormer release; converters rename CodeFormer's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Downsample", "SpatialAttention", "Upsample", "VQResBlock", "VectorQuantizer", "group_norm", "swish"]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups and eps 1e-6, affine: the normalisation of every VQGAN block."""
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def swish(x: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    return x * torch.sigmoid(x)


class VQResBlock(nn.Module):
    """norm1 -> swish -> conv1 -> norm2 -> swish -> conv2, plus the input (through a 1x1 ``nin_shortcut``
    when the width changes). (B,C_in,H,W) -> (B,C_out,H,W)."""

    def __init__(
        self,
        *,
        in_channels: int,  # C_in
        out_channels: int,  # C_out
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))  # dropout 0 at inference
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then a 3x3 convolution of stride 2: (B,C,H,W) -> (B,C,H/2,W/2)."""

    def __init__(self, *, channels: int) -> None:  # channels: C
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2, then a 3x3 convolution: (B,C,H,W) -> (B,C,2H,2W)."""

    def __init__(self, *, channels: int) -> None:  # channels: C
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SpatialAttention(nn.Module):
    """Attention over the H*W positions of a feature map, added to the input: (B,C,H,W) -> (B,C,H,W).

    Keys and values come from ``norm1(x)``; the query from ``norm2(y)`` when a second map ``y`` is given
    (cross-attention, RestoreFormer's decoder), else from ``norm1(x)``. Channels split head-major into
    ``heads`` heads of C/heads; the query is scaled by (C/heads)^-0.5; softmax over the keys.
    """

    def __init__(
        self,
        *,
        channels: int,  # C
        heads: int = 1,  # attention heads (C must divide by it)
        query_norm: bool = True,  # a separate norm2 for a cross-attention query (RestoreFormer has it
        # in every block, used or not; CodeFormer's single-head blocks have none)
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"SpatialAttention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.norm1 = group_norm(channels)
        self.norm2 = group_norm(channels) if query_norm else None
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.norm1(x)
        if y is not None and self.norm2 is None:
            raise ValueError("this attention block has no query norm: it attends within one map only")
        query = h if y is None else self.norm2(y)  # type: ignore[misc]
        b, c, hh, ww = h.shape
        n, d = self.heads, c // self.heads

        def split(t: Tensor) -> Tensor:  # (B,C,H,W) -> (B,heads,HW,d)
            return t.reshape(b, n, d, hh * ww).transpose(2, 3)

        q, k, v = split(self.q(query) * d**-0.5), split(self.k(h)), split(self.v(h))
        w = torch.softmax(q @ k.transpose(2, 3), dim=-1)  # (B,heads,HW_q,HW_k)
        out = (w @ v).transpose(2, 3).reshape(b, c, hh, ww)  # heads merged back in channel order
        return x + self.proj_out(out)


class VectorQuantizer(nn.Module):
    """The nearest of ``n_embed`` codes for every position: (B,D,H,W) -> (z_q (B,D,H,W), indices (B*H*W,) int64,
    squared distances (B*H*W, n_embed)). Distances are |z|^2 + |e|^2 - 2 z.e, as the release computes them
    (a near-tie then breaks the same way); positions are ordered by batch, then row, then column."""

    def __init__(self, *, n_embed: int, embed_dim: int) -> None:  # codebook size and code width D
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        codes = self.embedding.weight
        d = flat.pow(2).sum(1, keepdim=True) + codes.pow(2).sum(1) - 2 * flat @ codes.t()
        idx = torch.argmin(d, dim=1)
        z_q = self.lookup(idx, (b, h, w))
        return z_q, idx, d

    def lookup(self, idx: Tensor, shape: tuple[int, int, int]) -> Tensor:
        """Code rows for indices (B*H*W,), as a map (B,D,H,W) of ``shape`` (B,H,W); the one-hot product the
        release uses, so values match it bit for bit."""
        one_hot = F.one_hot(idx, self.embedding.num_embeddings).to(self.embedding.weight.dtype)
        b, h, w = shape
        return (one_hot @ self.embedding.weight).view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
