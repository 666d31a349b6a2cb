"""StyleGAN2 (Karras et al., CVPR 2020): mapping network, synthesis network and discriminator.

One generator class covers every released StyleGAN2 face prior used by GFPGAN and GPEN:

* ``flavour='original'``: NVlabs / rosinality / BasicSR maths (equalized layers, FIR resampling).
* ``flavour='clean'``: GFPGAN's CUDA-free re-parametrisation (bilinear resampling, pre-scaled weights).
* ``injection='concat'``: GPEN's generator, whose "noise" inputs are encoder features concatenated to
  every styled conv's output.

Layer and latent indexing for an output of ``2**L`` px: ``2L-3`` styled convs (``convs[0]`` at 4x4, then an
upsampling and a plain conv per resolution), ``L-1`` ToRGB layers, and ``num_ws = 2L-2`` latents.
``convs[0]`` uses ``ws[0]`` and ``torgbs[0]`` uses ``ws[1]``; at level ``j`` the convs use ``ws[2j+1]``,
``ws[2j+2]`` and the ToRGB ``ws[2j+3]``, so each ToRGB shares its latent with the next level's first conv.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from ...nn import (
    ConvLayer,
    EqualLinear,
    Flavour,
    NoiseMode,
    ResBlock,
    StyleConv,
    ToRGB,
    apply_sft,
    pixel_norm,
)
from .config import StyleGAN2Config

__all__ = [
    "channel_table",
    "mix_latents",
    "MappingNetwork",
    "StyleGAN2Generator",
    "StyleGAN2Discriminator",
]


def channel_table(size: int, *, channel_multiplier: int = 2, narrow: float = 1.0) -> dict[int, int]:
    """StyleGAN2 feature widths per resolution, ``{4: 512*narrow, ..., 64: 256*cm*narrow, ...}``."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16, 2048: 8}
    return {r: int(c * (channel_multiplier if r >= 64 else 1) * narrow) for r, c in base.items() if r <= size}


def mix_latents(ws_a: Tensor, ws_b: Tensor, crossover: int) -> Tensor:
    """Style mixing: layers ``[0, crossover)`` from ``ws_a`` and ``[crossover, num_ws)`` from ``ws_b``.

    Args:
        ws_a: (B,num_ws,D) or (B,D) latents for the coarse layers.
        ws_b: Same for the remaining layers; the two are broadcast against each other.
        crossover: First layer index taken from ``ws_b``.

    Returns:
        (B,num_ws,D).
    """
    if ws_a.ndim == 2 and ws_b.ndim == 2:
        raise ValueError("mix_latents needs at least one (B,num_ws,D) tensor to know num_ws")
    num_ws = ws_a.shape[1] if ws_a.ndim == 3 else ws_b.shape[1]
    if not 0 <= crossover <= num_ws:
        raise ValueError(f"crossover must be in [0, {num_ws}], got {crossover}")
    a = ws_a if ws_a.ndim == 3 else ws_a[:, None].expand(-1, num_ws, -1)
    b = ws_b if ws_b.ndim == 3 else ws_b[:, None].expand(-1, num_ws, -1)
    a, b = torch.broadcast_tensors(a, b)
    return torch.cat([a[:, :crossover], b[:, crossover:]], dim=1)


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``num_layers`` fully connected layers."""

    def __init__(
        self,
        *,
        style_dim: int = 512,  # z and w dimensionality
        num_layers: int = 8,  # number of fully connected layers
        lr_mul: float = 0.01,  # learning-rate multiplier (original flavour)
        flavour: Flavour = "original",  # 'clean': plain Linear + lrelu; 'original': equalized + sqrt(2) lrelu
    ) -> None:
        super().__init__()
        eq = flavour == "original"
        self.layers = nn.ModuleList(
            EqualLinear(
                style_dim,
                style_dim,
                lr_mul=lr_mul if eq else 1.0,
                equalized=eq,
                activation="scaled_lrelu" if eq else "lrelu",
            )
            for _ in range(num_layers)
        )

    def forward(self, z: Tensor) -> Tensor:
        """(B,D) z ~ N(0,I) -> (B,D) w."""
        x = pixel_norm(z)
        for layer in self.layers:
            x = layer(x)
        return x


class StyleGAN2Generator(nn.Module):
    """StyleGAN2 generator: mapping network plus skip-architecture synthesis network.

    The synthesis network also accepts GFPGAN's SFT conditions and GPEN's encoder features, so the
    restorers compose this class rather than copying its forward.
    """

    def __init__(
        self,
        *,
        size: int = 512,  # output resolution, a power of two >= 8
        style_dim: int = 512,  # z / w dimensionality
        n_mlp: int = 8,  # mapping network depth
        channel_multiplier: int = 1,  # width multiplier for resolutions >= 64 (1: StyleGAN2-512 prior; 2: config-f)
        narrow: float = 1.0,  # global width multiplier (GPEN-BFR-256 uses 0.5)
        lr_mlp: float = 0.01,  # mapping-network learning-rate multiplier
        flavour: Flavour = "original",  # 'original' (FIR, equalized) or 'clean' (GFPGAN bilinear)
        injection: Literal["add", "concat"] = "add",  # 'concat': GPEN feature injection instead of noise
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps (original flavour)
    ) -> None:
        super().__init__()
        self.config = StyleGAN2Config(
            size=size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
            lr_mlp=lr_mlp,
            flavour=flavour,
            injection=injection,
            resample_taps=tuple(resample_taps),
        )  # frozen constructor arguments: saved with the weights, rebuilds a fresh copy
        log_size = int(math.log2(size))
        self.size = size
        self.style_dim = style_dim
        self.log_size = log_size
        self.num_ws = 2 * log_size - 2
        self.flavour: Flavour = flavour
        self.injection = injection
        ch = channel_table(size, channel_multiplier=channel_multiplier, narrow=narrow)
        mult = 2 if injection == "concat" else 1
        common = dict(style_dim=style_dim, flavour=flavour, resample_taps=resample_taps)

        self.mapping = MappingNetwork(style_dim=style_dim, num_layers=n_mlp, lr_mul=lr_mlp, flavour=flavour)
        self.const = nn.Parameter(torch.randn(1, ch[4], 4, 4))
        convs = [StyleConv(ch[4], ch[4], resolution=4, injection=injection, **common)]
        torgbs = [ToRGB(ch[4] * mult, upsample_skip=False, **common)]
        in_ch = ch[4]
        for i in range(3, log_size + 1):
            res = 2**i
            out_ch = ch[res]
            convs.append(StyleConv(in_ch * mult, out_ch, resolution=res, up=True, injection=injection, **common))
            convs.append(StyleConv(out_ch * mult, out_ch, resolution=res, injection=injection, **common))
            torgbs.append(ToRGB(out_ch * mult, **common))
            in_ch = out_ch
        self.convs = nn.ModuleList(convs)
        self.torgbs = nn.ModuleList(torgbs)
        self.register_buffer("w_avg", torch.zeros(style_dim))  # truncation centre, saved with the weights

    # ----------------------------------------------------------------------------------------------
    # Latent space

    def map(self, z: Tensor) -> Tensor:
        """(B,D) z -> (B,D) w."""
        return self.mapping(z)

    @torch.no_grad()
    def update_w_avg(self, *, num_samples: int = 8192, seed: int = 0) -> Tensor:
        """Set ``w_avg`` (the truncation centre) to the mean of ``num_samples`` mapped z, deterministically."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        z = torch.randn(num_samples, self.style_dim, generator=g).to(self.w_avg.device, self.const.dtype)
        self.w_avg.copy_(self.map(z).mean(dim=0))
        return self.w_avg

    def truncate(self, w: Tensor, psi: float, center: Tensor | None = None) -> Tensor:
        """Truncation trick in W: ``center + psi * (w - center)``; ``center`` defaults to ``w_avg``."""
        if psi == 1.0:
            return w
        c = self.w_avg if center is None else center
        return c + psi * (w - c)

    def broadcast(self, w: Tensor) -> Tensor:
        """(B,D) -> (B,num_ws,D); (B,num_ws,D) is returned unchanged."""
        if w.ndim == 3:
            if w.shape[1] != self.num_ws:
                raise ValueError(f"expected {self.num_ws} per-layer latents, got {w.shape[1]}")
            return w
        return w[:, None].expand(-1, self.num_ws, -1)

    # ----------------------------------------------------------------------------------------------
    # Synthesis

    def synthesis(
        self,
        ws: Tensor,
        *,
        noise_mode: NoiseMode = "const",
        noise: Sequence[Tensor | None] | None = None,
        conditions: Sequence[tuple[Tensor, Tensor]] | None = None,
        sft_half: bool = True,
        fused: bool = True,
    ) -> Tensor:
        """Render images from per-layer latents.

        Args:
            ws: (B,num_ws,D) latents.
            noise_mode: Noise used by layers whose ``noise`` entry is None.
            noise: Optional per-conv list (length ``2L-3``) of explicit noise maps (B or 1,1,r,r), or for
                ``injection='concat'`` the encoder features (B,C,r,r) (required).
            conditions: Optional SFT (scale, shift) per resolution level 8..size, applied after each
                level's upsampling conv (GFPGAN). May be shorter than the number of levels.
            sft_half: Channel-split SFT (modulate the second half of the channels only).
            fused: Grouped-conv formulation of the modulated convs (see ``ModulatedConv2d``).

        Returns:
            (B,3,size,size) image, nominally in [-1,1] (not clamped).
        """
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must be (B,{self.num_ws},{self.style_dim}), got {tuple(ws.shape)}")
        n = noise if noise is not None else [None] * len(self.convs)
        if len(n) != len(self.convs):
            raise ValueError(f"noise must have {len(self.convs)} entries, got {len(n)}")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise_mode=noise_mode, noise=n[0], fused=fused)
        img = self.torgbs[0](x, ws[:, 1], fused=fused)
        for j in range(self.log_size - 2):
            i = 2 * j + 1
            x = self.convs[i](x, ws[:, i], noise_mode=noise_mode, noise=n[i], fused=fused)
            if conditions is not None and j < len(conditions):
                x = apply_sft(x, *conditions[j], half=sft_half)
            x = self.convs[i + 1](x, ws[:, i + 1], noise_mode=noise_mode, noise=n[i + 1], fused=fused)
            img = self.torgbs[j + 1](x, ws[:, i + 2], img, fused=fused)
        return img

    def forward(
        self,
        z: Tensor,
        *,
        input_is_latent: bool = False,
        truncation_psi: float = 1.0,
        truncation_latent: Tensor | None = None,
        noise_mode: NoiseMode = "const",
        noise: Sequence[Tensor | None] | None = None,
        return_latents: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Sample images.

        Args:
            z: (B,D) z (mapped), or with ``input_is_latent`` a (B,D) w or (B,num_ws,D) w+.
            input_is_latent: Skip the mapping network.
            truncation_psi: Truncation strength in W; 1 disables it.
            truncation_latent: Truncation centre (default ``w_avg``).
            noise_mode: See :data:`NoiseMode`.
            noise: Explicit per-layer noise, see :meth:`synthesis`.
            return_latents: Also return the (B,num_ws,D) latents actually used.

        Returns:
            ((B,3,size,size) image, latents or None).
        """
        if not input_is_latent and z.ndim != 2:
            raise ValueError("z must be (B,D); pass per-layer latents with input_is_latent=True")
        w = z if input_is_latent else self.map(z)
        w = self.truncate(w, truncation_psi, truncation_latent)
        ws = self.broadcast(w)
        img = self.synthesis(ws, noise_mode=noise_mode, noise=noise)
        return img, (ws if return_latents else None)


class StyleGAN2Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with minibatch standard deviation (original flavour)."""

    def __init__(
        self,
        *,
        size: int = 512,  # input resolution
        channel_multiplier: int = 1,  # width multiplier for resolutions >= 64
        narrow: float = 1.0,  # global width multiplier
        stddev_group: int = 4,  # minibatch-stddev group size
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps for downsampling
    ) -> None:
        super().__init__()
        log_size = int(math.log2(size))
        ch = channel_table(size, channel_multiplier=channel_multiplier, narrow=narrow)
        self.stddev_group = stddev_group
        self.conv_first = ConvLayer(3, ch[size], 1, activation="scaled_lrelu")
        self.blocks = nn.ModuleList(
            ResBlock(ch[2**i], ch[2 ** (i - 1)], mode="down", flavour="original", resample_taps=resample_taps)
            for i in range(log_size, 2, -1)
        )
        self.conv_final = ConvLayer(ch[4] + 1, ch[4], 3, activation="scaled_lrelu")
        self.fc = EqualLinear(ch[4] * 16, ch[4], activation="scaled_lrelu")
        self.out = EqualLinear(ch[4], 1)

    def forward(self, img: Tensor, *, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """(B,3,H,W) in [-1,1] -> (B,1) realness logits (and each block's output, for feature matching)."""
        x = self.conv_first(img)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        b, c, h, w = x.shape
        g = min(self.stddev_group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # (B/g,)
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
        x = self.conv_final(torch.cat([x, y], dim=1))
        logits = self.out(self.fc(x.flatten(1)))
        return (logits, feats) if return_features else logits
