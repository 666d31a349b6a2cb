"""GFPGAN (Wang et al., CVPR 2021): a U-Net that predicts StyleGAN2 w+ latents and SFT conditions.

``flavour='clean'`` is GFPGANv1Clean (the v1.2 / v1.3 / v1.4 releases); ``flavour='original'`` is the
paper's GFPGANv1 (equalized layers, FIR resampling in the encoder and the decoder).

Data flow for an input (B,3,S,S) in [-1,1], ``L = log2(S)``:

1. ``conv_body_first`` (1x1) then ``L-2`` down ResBlocks S -> 4; each block output is a U-Net skip.
2. ``final_conv`` at 4x4, then ``final_linear`` on the C,H,W-flattened feature -> (B, 2L-2, D) w+.
3. For each level 8..S: add the skip (at the lower resolution), an up ResBlock, then two
   :class:`ConditionBranch` heads give the SFT scale and shift; ``toRGB`` gives an auxiliary image.
4. The StyleGAN2 decoder renders the w+ with SFT after each level's upsampling conv.
5. Optionally (``detail_channels > 0``, gfr's embedded models; not in the released checkpoints) a
   :class:`DetailHead` adds a full-resolution correction computed from the input, the decoder's image
   and the U-Net's last features. The U-Net's highest skip is at S/2, so without it nothing at full
   resolution reaches the output except through the frozen decoder.

The decoder's mapping network is stored in the released checkpoints but never used by restoration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ...nn import ConditionBranch, ConvLayer, EqualLinear, Flavour, NoiseMode, ResBlock, bias_act
from ..stylegan2 import StyleGAN2Generator, channel_table
from .config import GFPGANConfig

__all__ = ["GFPGAN", "Conditions", "ContextBlock", "DetailHead", "Encoding"]

Conditions = list[tuple[Tensor, Tensor]]
"""Per-level SFT (scale, shift) pairs, level j at resolution ``2**(j+3)``."""


class Encoding(NamedTuple):
    """What the U-Net predicts for a batch of degraded faces."""

    latents: Tensor  # (B,num_ws,D) w+
    conditions: Conditions  # SFT (scale, shift) per level 8..S
    rgbs: list[Tensor]  # auxiliary (B,3,r,r) images per level (empty unless requested)
    features: Tensor  # (B,C,S,S) the U-Net's last feature map


class ContextBlock(nn.Module):
    """Residual block of the DetailHead: ``h + conv_b(lrelu(conv_a(h) + ctx(mean(h))))``.

    ``conv_a`` widens to ``hidden`` channels (wide activation, as in WDSR) and receives a per-image bias
    from the global average of ``h``, so that a correction can depend on the whole face (a colour cast,
    the amount of blur) and not only on a 3x3 neighbourhood. ``conv_b`` starts at zero: a block added to
    a trained head leaves its output unchanged until it is trained.
    """

    def __init__(
        self,
        *,
        channels: int,  # width of the residual stream
        hidden: int,  # width inside the block
    ) -> None:
        super().__init__()
        self.conv_a = ConvLayer(channels, hidden, 3, equalized=False)
        self.ctx = nn.Linear(channels, hidden)
        self.conv_b = ConvLayer(hidden, channels, 3, equalized=False)
        nn.init.zeros_(self.conv_b.weight)
        nn.init.zeros_(self.conv_b.bias)

    def forward(self, h: Tensor) -> Tensor:
        """(B,C,S,S) -> (B,C,S,S)."""
        g = self.ctx(h.mean((2, 3)))[:, :, None, None]
        return h + self.conv_b(bias_act(self.conv_a(h) + g, None, "lrelu"))


class DetailHead(nn.Module):
    """Full-resolution residual: (input, decoder image, U-Net features) -> an RGB correction of the image.

    Two 3x3 convs, optionally ``blocks`` :class:`ContextBlock` s, and a 1x1 projection whose weights start
    at zero, so a head added to a trained restorer leaves its output unchanged until it is trained (and so
    do blocks added to a trained head). Plain (not equalized) weights in either flavour: equalized
    learning rate divides the step of a zero-initialised layer by sqrt(fan_in), and a head fine-tuned that
    way on a trained restorer had not moved its output after 400 steps.
    """

    def __init__(
        self,
        *,
        feature_channels: int,  # channels of the U-Net's last feature map
        channels: int,  # width of the two hidden 3x3 convs (and of the residual stream)
        blocks: int = 0,  # ContextBlocks after them (0: the first embedded heads)
    ) -> None:
        super().__init__()
        self.conv0 = ConvLayer(6 + feature_channels, channels, 3, activation="lrelu", equalized=False)
        self.conv1 = ConvLayer(channels, channels, 3, activation="lrelu", equalized=False)
        self.blocks = nn.Sequential(*(ContextBlock(channels=channels, hidden=2 * channels) for _ in range(blocks)))
        self.to_rgb = ConvLayer(channels, 3, 1, equalized=False)
        nn.init.zeros_(self.to_rgb.weight)

    def forward(self, x: Tensor, img: Tensor, features: Tensor) -> Tensor:
        """x, img: (B,3,S,S) in [-1,1]; features (B,C,S,S) -> (B,3,S,S) correction."""
        return self.to_rgb(self.blocks(self.conv1(self.conv0(torch.cat([x, img.to(x.dtype), features], 1)))))


class GFPGAN(nn.Module):
    """GFPGAN restorer: degradation-removal U-Net + StyleGAN2 decoder with channel-split SFT."""

    def __init__(
        self,
        *,
        out_size: int = 512,  # input and output resolution
        num_style_feat: int = 512,  # latent dimensionality
        channel_multiplier: int = 2,  # decoder width multiplier for resolutions >= 64 (v1: 1)
        narrow: float = 1.0,  # global width multiplier; the U-Net is half as wide as the decoder
        sft_half: bool = True,  # channel-split SFT (modulate half of the decoder channels)
        flavour: Flavour = "clean",  # 'clean' (v1.2/v1.3/v1.4) or 'original' (v1, paper model)
        num_mlp: int = 8,  # depth of the decoder's (unused) mapping network
        lr_mlp: float = 0.01,  # decoder mapping lr multiplier (original flavour)
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps (original flavour)
        detail_channels: int = 0,  # width of the full-resolution DetailHead; 0: none (as released)
        detail_blocks: int = 0,  # ContextBlocks in the DetailHead (with detail_channels > 0)
    ) -> None:
        super().__init__()
        self.config = GFPGANConfig(
            out_size=out_size,
            num_style_feat=num_style_feat,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
            sft_half=sft_half,
            flavour=flavour,
            num_mlp=num_mlp,
            lr_mlp=lr_mlp,
            resample_taps=tuple(resample_taps),
            detail_channels=detail_channels,
            detail_blocks=detail_blocks,
        )  # frozen constructor arguments: saved with the weights
        self.out_size = out_size
        self.sft_half = sft_half
        self.flavour: Flavour = flavour
        eq = flavour == "original"
        act = "scaled_lrelu" if eq else "lrelu"
        unet = channel_table(out_size, channel_multiplier=channel_multiplier, narrow=narrow * 0.5)
        log_size = out_size.bit_length() - 1
        self.num_ws = 2 * log_size - 2
        self.num_style_feat = num_style_feat

        self.conv_body_first = ConvLayer(3, unet[out_size], 1, activation=act, equalized=eq)
        self.conv_body_down = nn.ModuleList(
            ResBlock(unet[2**i], unet[2 ** (i - 1)], mode="down", flavour=flavour, resample_taps=resample_taps)
            for i in range(log_size, 2, -1)
        )
        self.final_conv = ConvLayer(unet[4], unet[4], 3, activation=act, equalized=eq)
        self.final_linear = EqualLinear(unet[4] * 16, self.num_ws * num_style_feat, equalized=eq)
        ups, scales, shifts, rgbs = [], [], [], []
        for i in range(3, log_size + 1):
            c_in, c_out = unet[2 ** (i - 1)], unet[2**i]
            sft_ch = c_out if sft_half else 2 * c_out
            ups.append(ResBlock(c_in, c_out, mode="up", flavour=flavour))
            scales.append(ConditionBranch(c_out, sft_ch, equalized=eq, bias_init=1.0))
            shifts.append(ConditionBranch(c_out, sft_ch, equalized=eq))
            rgbs.append(ConvLayer(c_out, 3, 1, equalized=eq))
        self.conv_body_up = nn.ModuleList(ups)
        self.condition_scale = nn.ModuleList(scales)
        self.condition_shift = nn.ModuleList(shifts)
        self.toRGB = nn.ModuleList(rgbs)
        self.stylegan_decoder = StyleGAN2Generator(**dataclasses.asdict(self.config.decoder()))
        self.detail = (
            DetailHead(feature_channels=unet[out_size], channels=detail_channels, blocks=detail_blocks)
            if detail_channels
            else None
        )

    def encode(self, x: Tensor, *, return_rgb: bool = False) -> Encoding:
        """Run the U-Net.

        Args:
            x: (B,3,S,S) degraded face in [-1,1].
            return_rgb: Also compute the auxiliary per-level RGB images (used by the pyramid loss).

        Returns:
            An :class:`Encoding`: w+ latents (B,2L-2,D), SFT conditions (one (scale, shift) per level
            8..S), the auxiliary images (B,3,r,r) per level (empty unless ``return_rgb``) and the last
            feature map (B,C,S,S).
        """
        feat = self.conv_body_first(x)
        skips = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.append(feat)
        feat = self.final_conv(feat)
        latents = self.final_linear(feat.flatten(1)).reshape(x.shape[0], self.num_ws, self.num_style_feat)
        conditions: Conditions = []
        rgbs: list[Tensor] = []
        for i, up in enumerate(self.conv_body_up):
            feat = up(feat + skips[-1 - i])
            conditions.append((self.condition_scale[i](feat), self.condition_shift[i](feat)))
            if return_rgb:
                rgbs.append(self.toRGB[i](feat))
        return Encoding(latents, conditions, rgbs, feat)

    def decode(
        self, latents: Tensor, conditions: Conditions | None, *, noise_mode: NoiseMode = "const", fused: bool = True
    ) -> Tensor:
        """Render (B,num_ws,D) latents with SFT ``conditions`` -> (B,3,S,S), nominally in [-1,1]."""
        return self.stylegan_decoder.synthesis(
            latents, conditions=conditions, sft_half=self.sft_half, noise_mode=noise_mode, fused=fused
        )

    def refine(self, x: Tensor, img: Tensor, features: Tensor, *, strength: float = 1.0) -> Tensor:
        """Add the DetailHead's correction (scaled by ``strength``) to a decoded ``img``; identity without a head."""
        if self.detail is None or strength == 0:
            return img
        d = self.detail(x, img, features)
        return img + (d if strength == 1.0 else strength * d).to(img.dtype)

    def forward(
        self, x: Tensor, *, noise_mode: NoiseMode = "const", spatial_strength: float = 1.0, fused: bool = True
    ) -> Tensor:
        """Restore (B,3,S,S) faces in [-1,1] -> (B,3,S,S), not clamped.

        Args:
            x: Degraded faces.
            noise_mode: ``'random'`` reproduces the official inference (fresh noise per call); the default
                ``'const'`` uses the checkpoint's stored noise maps, so the same input gives the same output.
            spatial_strength: Scales the SFT conditions towards the identity transform (scale 1, shift 0)
                and the DetailHead's correction towards 0: 1 is the trained model, 0 renders the predicted
                latents through the bare prior.
            fused: Modulated-conv formulation (see ``ModulatedConv2d.forward``); same result either way.
        """
        latents, conditions, _, features = self.encode(x)
        if spatial_strength != 1.0:
            s = spatial_strength
            conditions = [(1 + s * (scale - 1), s * shift) for scale, shift in conditions]
        img = self.decode(latents, conditions, noise_mode=noise_mode, fused=fused)
        return self.refine(x, img, features, strength=spatial_strength)
