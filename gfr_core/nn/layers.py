"""Fully connected and convolution layers with optional equalized learning rate.

"Equalized" layers (StyleGAN2, BasicSR, rosinality, GPEN) store unit-variance weights and multiply them
by ``lr_mul / sqrt(fan_in)`` at run time. "Plain" layers (GFPGAN's clean architecture) store the
weights already scaled. Both flavours share these modules; ``equalized`` picks one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .resample import Blur, resize_bilinear
from .winograd import conv3x3_winograd, winograd_filter_if_pays, winograd_pays

__all__ = ["Activation", "bias_act", "pixel_norm", "EqualLinear", "ConvLayer", "ResBlock"]

Activation = Literal["linear", "lrelu", "scaled_lrelu"]
"""'linear': identity. 'lrelu': leaky ReLU(0.2). 'scaled_lrelu': sqrt(2) * leaky ReLU(0.2), StyleGAN2's
gain-corrected ("fused") activation."""

_SQRT2 = math.sqrt(2.0)


def bias_act(x: Tensor, bias: Tensor | None, activation: Activation, *, dim: int = 1) -> Tensor:
    """Add a per-channel bias along ``dim`` and apply ``activation``.

    Args:
        x: Tensor of any rank, channels on ``dim``.
        bias: (C,) or None.
        activation: See :data:`Activation`.
        dim: Channel axis.

    Returns:
        Tensor of the same shape as ``x``.
    """
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + bias.reshape(shape)
    if activation == "linear":
        return x
    x = F.leaky_relu(x, 0.2)
    return x * _SQRT2 if activation == "scaled_lrelu" else x


def pixel_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Normalise (B,D) vectors to unit root-mean-square: ``x * rsqrt(mean(x^2) + eps)``."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class EqualLinear(nn.Module):
    """Fully connected layer, ``act(x @ (W * w_gain).T + b * lr_mul)``."""

    def __init__(
        self,
        in_features: int,  # input dimensionality
        out_features: int,  # output dimensionality
        *,
        bias: bool = True,  # learn an additive bias
        bias_init: float = 0.0,  # initial bias value (1 for style affines)
        lr_mul: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
        equalized: bool = True,  # scale weights by lr_mul/sqrt(in) at run time
        activation: Activation = "linear",  # nonlinearity applied after the bias
    ) -> None:
        super().__init__()
        self.activation: Activation = activation
        self.lr_mul = lr_mul
        self.w_gain = lr_mul / math.sqrt(in_features) if equalized else 1.0
        init_std = 1.0 / lr_mul if equalized else 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * init_std)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """(B,in) -> (B,out)."""
        b = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation == "linear":
            return F.linear(x, self.weight * self.w_gain, b)
        return bias_act(F.linear(x, self.weight * self.w_gain), b, self.activation)

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, act={self.activation}, lr_mul={self.lr_mul}"


class ConvLayer(nn.Module):
    """2-D convolution with optional FIR-blurred stride-2 downsampling, bias and activation."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        kernel_size: int,  # square kernel size
        *,
        bias: bool = True,  # learn an additive per-channel bias
        activation: Activation = "linear",  # nonlinearity applied after the bias
        down: bool = False,  # FIR blur then stride-2 convolution (StyleGAN2 discriminator style)
        equalized: bool = True,  # scale weights by 1/sqrt(in*k*k) at run time
        bias_init: float = 0.0,  # initial bias value
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps used when down=True
    ) -> None:
        super().__init__()
        self.activation: Activation = activation
        self.down = down
        fan_in = in_channels * kernel_size * kernel_size
        self.w_gain = 1.0 / math.sqrt(fan_in) if equalized else 1.0
        init_std = 1.0 if equalized else 1.0 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) * init_std)
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init))) if bias else None
        if down:
            p = (len(resample_taps) - 2) + (kernel_size - 1)
            self.blur = Blur(taps=resample_taps, pad=((p + 1) // 2, p // 2))
            self.padding = 0
        else:
            self.blur = None
            self.padding = kernel_size // 2
        # Inference formulation, not architecture (see use_winograd). Not saved in the state dict.
        self.register_buffer("winograd_u", None, persistent=False)

    def use_winograd(self, enable: bool) -> None:
        """Run this conv as Winograd F(4,3) (same result up to rounding) where it is a 3x3 stride-1 conv whose
        channels pay (:func:`gfr_core.nn.winograd_pays`); ``False`` goes back to the direct conv. The
        transformed filter is taken from the current weights: call again after changing them."""
        w = self.weight * self.w_gain if self.w_gain != 1.0 else self.weight
        self.winograd_u = winograd_filter_if_pays(w) if enable and not self.down else None

    def forward(self, x: Tensor) -> Tensor:
        """(B,in,H,W) -> (B,out,H,W), or (B,out,H/2,W/2) when ``down``."""
        if self.blur is not None:
            x = self.blur(x)
        w = self.weight * self.w_gain if self.w_gain != 1.0 else self.weight
        if self.winograd_u is not None and winograd_pays(x.shape[1], w.shape[0], tuple(x.shape)):
            x = conv3x3_winograd(x, self.winograd_u, self.bias)
        else:
            x = F.conv2d(x, w, self.bias, stride=2 if self.down else 1, padding=self.padding)
        return bias_act(x, None, self.activation)


class ResBlock(nn.Module):
    """Residual block that halves or doubles the resolution (GFPGAN U-Net, StyleGAN2 discriminator).

    ``flavour='original'`` (BasicSR): equalized convs with sqrt(2)-gain activations; downsampling is an
    FIR-blurred stride-2 conv, upsampling is bilinear before the second conv; the sum is divided by
    sqrt(2). ``flavour='clean'`` (GFPGAN v1.2+): plain convs, leaky ReLU without gain, bilinear resizing
    between the two convs and before the 1x1 skip, no 1/sqrt(2).
    """

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        *,
        mode: Literal["down", "up"],  # halve or double the resolution
        flavour: Literal["clean", "original"] = "clean",  # see class docstring
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps (original flavour, down mode)
    ) -> None:
        super().__init__()
        self.mode = mode
        self.flavour = flavour
        eq = flavour == "original"
        act: Activation = "scaled_lrelu" if eq else "lrelu"
        fir_down = eq and mode == "down"
        self.conv1 = ConvLayer(in_channels, in_channels, 3, activation=act, equalized=eq)
        self.conv2 = ConvLayer(
            in_channels, out_channels, 3, activation=act, equalized=eq, down=fir_down, resample_taps=resample_taps
        )
        self.skip = ConvLayer(
            in_channels, out_channels, 1, bias=False, equalized=eq, down=fir_down, resample_taps=resample_taps
        )
        self.bilinear_scale = None if fir_down else (0.5 if mode == "down" else 2.0)

    def forward(self, x: Tensor) -> Tensor:
        """(B,in,H,W) -> (B,out,H/2,W/2) for 'down' or (B,out,2H,2W) for 'up'."""
        y = self.conv1(x)
        if self.bilinear_scale is not None:
            y = resize_bilinear(y, self.bilinear_scale)
            x = resize_bilinear(x, self.bilinear_scale)
        out = self.conv2(y) + self.skip(x)
        return out / _SQRT2 if self.flavour == "original" else out
