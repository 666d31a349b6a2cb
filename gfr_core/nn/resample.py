"""Resampling primitives shared by every network: FIR filtering (``upfirdn2d``) and bilinear resizing.

Two upsampling flavours exist in the StyleGAN2 family:

* ``'fir'`` (the original StyleGAN2 / rosinality / BasicSR / GPEN code): zero-insertion or transposed
  convolution followed by a 4x4 FIR low-pass built from ``[1, 3, 3, 1]``.
* ``'bilinear'`` (GFPGAN's "clean" architecture): ``F.interpolate(..., mode='bilinear',
  align_corners=False)``.

Everything here is pure PyTorch; there are no CUDA extensions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["fir_kernel", "upfirdn2d", "resize_bilinear", "Blur", "Upsample2x"]


def fir_kernel(taps: Sequence[float] = (1, 3, 3, 1), *, gain: float = 1.0) -> Tensor:
    """Separable 2-D FIR kernel ``outer(taps, taps)`` normalised to sum ``gain``.

    Args:
        taps: 1-D filter taps.
        gain: Sum of the returned kernel; upsampling by 2 uses ``gain=4`` to keep the signal level.

    Returns:
        (K,K) float32 kernel.
    """
    k = torch.as_tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k) if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn2d(x: Tensor, kernel: Tensor, *, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad, convolve with ``kernel``, then keep every ``down``-th sample.

    Args:
        x: (B,C,H,W) input.
        kernel: (K,K) FIR kernel (the convolution is a true one: the kernel is flipped).
        up: Integer upsampling factor (zeros inserted after each sample).
        down: Integer downsampling factor (samples kept from index 0).
        pad: (before, after) zero padding applied on both axes after upsampling; may be negative.

    Returns:
        (B,C,H',W') with ``H' = (H*up + pad0 + pad1 - K) // down + 1``.
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    weight = kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


def resize_bilinear(x: Tensor, scale: float) -> Tensor:
    """Bilinear resize of (B,C,H,W) by ``scale`` with ``align_corners=False`` (GFPGAN clean flavour)."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


class Blur(nn.Module):
    """FIR low-pass filter with fixed padding, used around strided and transposed convolutions."""

    def __init__(
        self,
        *,
        taps: Sequence[float] = (1, 3, 3, 1),  # 1-D taps of the separable FIR filter
        pad: tuple[int, int] = (1, 1),  # (before, after) zero padding on both spatial axes
        gain: float = 1.0,  # kernel sum; 4 after a stride-2 transposed conv
    ) -> None:
        super().__init__()
        self.pad = pad
        self.register_buffer("kernel", fir_kernel(taps, gain=gain), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B,C,H,W) -> (B,C,H+p0+p1-K+1,W+p0+p1-K+1)."""
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample2x(nn.Module):
    """2x upsampling of an image-like tensor, as used on the ToRGB skip path."""

    def __init__(
        self,
        *,
        mode: str = "fir",  # 'fir' (zero insertion + FIR, pad (2,1)) or 'bilinear'
        taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps for mode 'fir'
    ) -> None:
        super().__init__()
        if mode not in ("fir", "bilinear"):
            raise ValueError(f"Upsample2x mode must be 'fir' or 'bilinear', got {mode!r}")
        self.mode = mode
        self.register_buffer("kernel", fir_kernel(taps, gain=4.0), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B,C,H,W) -> (B,C,2H,2W)."""
        if self.mode == "bilinear":
            return resize_bilinear(x, 2.0)
        k = self.kernel.shape[0]
        p = k - 2
        return upfirdn2d(x, self.kernel, up=2, pad=((p + 1) // 2 + 1, p // 2))
