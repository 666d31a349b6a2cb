"""Shared pure-PyTorch building blocks: equalized layers, resampling, modulated conv and SFT."""

from .layers import Activation, ConvLayer, EqualLinear, ResBlock, bias_act, pixel_norm
from .modconv import Flavour, ModulatedConv2d, NoiseMode, StyleConv, ToRGB
from .random import batch_shard, randn_batch
from .resample import Blur, Upsample2x, fir_kernel, resize_bilinear, upfirdn2d
from .sft import ConditionBranch, apply_sft
from .winograd import conv3x3_winograd, winograd_filter, winograd_filter_if_pays, winograd_pays

__all__ = [
    "Activation",
    "Blur",
    "ConditionBranch",
    "ConvLayer",
    "EqualLinear",
    "Flavour",
    "ModulatedConv2d",
    "NoiseMode",
    "ResBlock",
    "StyleConv",
    "ToRGB",
    "Upsample2x",
    "apply_sft",
    "batch_shard",
    "bias_act",
    "conv3x3_winograd",
    "fir_kernel",
    "pixel_norm",
    "randn_batch",
    "resize_bilinear",
    "upfirdn2d",
    "winograd_filter",
    "winograd_filter_if_pays",
    "winograd_pays",
]
