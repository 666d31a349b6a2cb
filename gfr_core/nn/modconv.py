"""StyleGAN2 modulated convolution, styled conv layer (with noise or feature injection) and ToRGB.

Two flavours, selected per layer:

* ``'original'``: equalized weights, transposed-conv + FIR upsampling, noise added to the raw conv
  output and then ``sqrt(2) * lrelu(x + b)`` (StyleGAN2 / BasicSR / rosinality / GPEN).
* ``'clean'``: weights stored pre-scaled, bilinear upsampling of the conv input, ``sqrt(2)`` applied to the
  conv output *before* noise and bias, then lrelu without gain (GFPGAN v1.2+).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import EqualLinear, bias_act
from .random import randn_batch
from .resample import Blur, Upsample2x, resize_bilinear
from .winograd import conv3x3_winograd, winograd_filter_if_pays, winograd_pays

__all__ = ["Flavour", "NoiseMode", "ModulatedConv2d", "StyleConv", "ToRGB"]

Flavour = Literal["clean", "original"]
NoiseMode = Literal["const", "random", "none"]
"""'const': the layer's stored noise map (deterministic). 'random': fresh N(0,1) noise per call.
'none': no noise."""

_SQRT2 = math.sqrt(2.0)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style vector, then optionally demodulated."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        kernel_size: int,  # square kernel size (3 for convs, 1 for ToRGB)
        *,
        style_dim: int,  # dimensionality of the w vector feeding the affine
        demodulate: bool = True,  # normalise each output filter to unit norm (False for ToRGB)
        up: bool = False,  # 2x upsampling
        flavour: Flavour = "original",  # see module docstring
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps for original-flavour upsampling
        eps: float = 1e-8,  # demodulation epsilon, inside the rsqrt
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.up = up
        self.flavour: Flavour = flavour
        self.eps = eps
        equalized = flavour == "original"
        fan_in = in_channels * kernel_size * kernel_size
        self.w_gain = 1.0 / math.sqrt(fan_in) if equalized else 1.0
        init_std = 1.0 if equalized else 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size) * init_std)
        self.affine = EqualLinear(style_dim, in_channels, bias_init=1.0, equalized=equalized)
        self.blur = None
        if up and flavour == "original":
            p = (len(resample_taps) - 2) - (kernel_size - 1)
            self.blur = Blur(taps=resample_taps, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
        # Inference formulation, not architecture (see use_winograd). Not saved in the state dict.
        self.register_buffer("winograd_u", None, persistent=False)

    def use_winograd(self, enable: bool) -> None:
        """Run the shared-weight (``fused=False``) 3x3 conv as Winograd F(4,3) (same result up to rounding)
        where its channels pay; not the transposed conv of original-flavour upsampling. ``False`` goes
        back to the direct conv. The transformed filter is taken from the current weights."""
        w0 = self.weight[0] * self.w_gain if self.w_gain != 1.0 else self.weight[0]
        self.winograd_u = winograd_filter_if_pays(w0) if enable and self.blur is None else None

    def forward(self, x: Tensor, w: Tensor, *, fused: bool = True) -> Tensor:
        """Modulated convolution.

        Args:
            x: (B,in,H,W) features.
            w: (B,style_dim) latent for this layer.
            fused: Fold the batch into a grouped convolution with per-sample weights (the official
                formulation). ``False`` scales activations instead and shares one weight across the batch;
                the result is the same up to float rounding and is often faster for large batches.

        Returns:
            (B,out,H,W), or (B,out,2H,2W) when ``up``.
        """
        b = x.shape[0]
        s = self.affine(w)  # (B,in)
        weight = self.weight * self.w_gain if self.w_gain != 1.0 else self.weight  # (1,out,in,k,k)
        if self.up and self.flavour == "clean":
            x = resize_bilinear(x, 2.0)
        if fused:
            wm = weight * s.reshape(b, 1, -1, 1, 1)  # (B,out,in,k,k)
            if self.demodulate:
                wm = wm * torch.rsqrt(wm.square().sum(dim=(2, 3, 4), keepdim=True) + self.eps)
            x = x.reshape(1, -1, *x.shape[2:])
            k = self.kernel_size
            if self.up and self.flavour == "original":
                wt = wm.transpose(1, 2).reshape(b * self.in_channels, self.out_channels, k, k)
                out = F.conv_transpose2d(x, wt, stride=2, groups=b)
            else:
                out = F.conv2d(x, wm.reshape(b * self.out_channels, self.in_channels, k, k), padding=k // 2, groups=b)
            out = out.reshape(b, self.out_channels, *out.shape[2:])
        else:
            x = x * s.reshape(b, -1, 1, 1).to(x.dtype)
            w0 = weight[0]
            if self.up and self.flavour == "original":
                out = F.conv_transpose2d(x, w0.transpose(0, 1), stride=2)
            elif self.winograd_u is not None and winograd_pays(self.in_channels, self.out_channels, tuple(x.shape)):
                out = conv3x3_winograd(x, self.winograd_u)
            else:
                out = F.conv2d(x, w0, padding=self.kernel_size // 2)
            if self.demodulate:
                d = torch.rsqrt(s.square() @ w0.square().sum(dim=(2, 3)).T + self.eps)  # (B,out)
                out = out * d.reshape(b, -1, 1, 1).to(out.dtype)
        if self.blur is not None:
            out = self.blur(out)
        return out

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, "
            f"demod={self.demodulate}, up={self.up}, flavour={self.flavour}"
        )


class StyleConv(nn.Module):
    """Modulated conv, then noise (added) or an encoder feature (concatenated, GPEN), then bias + lrelu."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # conv output channels (doubled on output when injection='concat')
        *,
        style_dim: int,  # w dimensionality
        resolution: int,  # output resolution, sizes the stored noise map
        up: bool = False,  # 2x upsampling in the conv
        flavour: Flavour = "original",  # see module docstring
        injection: Literal["add", "concat"] = "add",  # 'add': scaled noise; 'concat': GPEN encoder features
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps for original-flavour upsampling
    ) -> None:
        super().__init__()
        self.flavour: Flavour = flavour
        self.injection = injection
        self.resolution = resolution
        self.conv = ModulatedConv2d(
            in_channels, out_channels, 3, style_dim=style_dim, up=up, flavour=flavour, resample_taps=resample_taps
        )
        self.noise_strength = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(out_channels * (2 if injection == "concat" else 1)))
        if injection == "add":
            self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))
        else:
            self.noise_const = None

    @property
    def out_channels(self) -> int:
        """Channels of the layer output (after any concatenation)."""
        return self.bias.shape[0]

    def forward(
        self,
        x: Tensor,
        w: Tensor,
        *,
        noise_mode: NoiseMode = "const",
        noise: Tensor | None = None,
        fused: bool = True,
    ) -> Tensor:
        """Styled convolution.

        Args:
            x: (B,in,H,W).
            w: (B,style_dim).
            noise_mode: How to draw the noise when ``noise`` is None (injection 'add' only).
            noise: Explicit (B or 1,1,H',W') noise for 'add', or the (B,out,H',W') encoder feature for
                'concat' (required there).
            fused: See :meth:`ModulatedConv2d.forward`.

        Returns:
            (B,out_channels,H',W').
        """
        y = self.conv(x, w, fused=fused)
        if self.injection == "concat":
            if noise is None:
                raise ValueError("StyleConv(injection='concat') needs the encoder feature passed as `noise`")
            y = torch.cat([y, self.noise_strength * noise], dim=1)
            return bias_act(y, self.bias, "scaled_lrelu")
        if self.flavour == "clean":
            y = y * _SQRT2
        if noise is None:
            if noise_mode == "const":
                noise = self.noise_const
            elif noise_mode == "random":
                noise = randn_batch(y.shape[0], 1, y.shape[2], y.shape[3], device=y.device, dtype=y.dtype)
            elif noise_mode != "none":
                raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {noise_mode!r}")
        if noise is not None:
            y = y + self.noise_strength * noise.to(y.dtype)
        return bias_act(y, self.bias, "lrelu" if self.flavour == "clean" else "scaled_lrelu")


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation) plus bias, accumulated onto the upsampled skip."""

    def __init__(
        self,
        in_channels: int,  # input channels
        *,
        style_dim: int,  # w dimensionality
        upsample_skip: bool = True,  # the incoming skip is at half resolution (False for the 4x4 ToRGB)
        flavour: Flavour = "original",  # 'original': FIR skip upsampling; 'clean': bilinear
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps
        out_channels: int = 3,  # image channels
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels, out_channels, 1, style_dim=style_dim, demodulate=False, flavour=flavour
        )
        self.bias = nn.Parameter(torch.zeros(out_channels))
        mode = "fir" if flavour == "original" else "bilinear"
        self.upsample = Upsample2x(mode=mode, taps=resample_taps) if upsample_skip else None

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None, *, fused: bool = True) -> Tensor:
        """(B,in,H,W), (B,style_dim), optional (B,3,H/2,W/2) skip -> (B,3,H,W)."""
        y = bias_act(self.conv(x, w, fused=fused), self.bias, "linear")
        if skip is not None:
            if self.upsample is not None:
                skip = self.upsample(skip)
            y = y + skip
        return y
