"""GPEN (Yang et al., CVPR 2021): a GAN prior embedded in a U-shaped network.

The encoder (``ecd0`` 1x1 conv, then FIR-blurred stride-2 convs down to 4x4) produces one feature map per
resolution. Its 4x4 output, flattened, gives a 512-d code that goes through the generator's *mapping
network* (GPEN treats it as z) and is repeated to every layer. The generator's "noise" inputs are the
encoder features: conv ``convs[0]`` at 4x4 receives the 4x4 feature and both convs at resolution r receive
the r x r feature, each concatenated (after a learned scalar) to the conv output, doubling its channels.
There is nothing random in GPEN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import Tensor, nn

from ...nn import ConvLayer, EqualLinear
from ..stylegan2 import StyleGAN2Generator, channel_table
from .config import GPENConfig

__all__ = ["GPEN"]


class GPEN(nn.Module):
    """GPEN FullGenerator for blind face restoration (GPEN-BFR-256 / GPEN-BFR-512)."""

    def __init__(
        self,
        *,
        size: int = 512,  # input and output resolution
        style_dim: int = 512,  # latent dimensionality
        n_mlp: int = 8,  # mapping network depth
        channel_multiplier: int = 2,  # width multiplier for resolutions >= 64 (BFR-256: 1)
        narrow: float = 1.0,  # global width multiplier (BFR-256: 0.5)
        lr_mlp: float = 0.01,  # mapping lr multiplier
        resample_taps: Sequence[float] = (1, 3, 3, 1),  # FIR taps
    ) -> None:
        super().__init__()
        self.config = GPENConfig(
            size=size,
            style_dim=style_dim,
            n_mlp=n_mlp,
            channel_multiplier=channel_multiplier,
            narrow=narrow,
            lr_mlp=lr_mlp,
            resample_taps=tuple(resample_taps),
        )  # saved with the weights
        ch = channel_table(size, channel_multiplier=channel_multiplier, narrow=narrow)
        log_size = size.bit_length() - 1
        self.size = size
        enc = [ConvLayer(3, ch[size], 1, activation="scaled_lrelu")]
        for i in range(log_size, 2, -1):
            enc.append(
                ConvLayer(
                    ch[2**i], ch[2 ** (i - 1)], 3, down=True, activation="scaled_lrelu", resample_taps=resample_taps
                )
            )
        self.encoder = nn.ModuleList(enc)
        self.final_linear = EqualLinear(ch[4] * 16, style_dim, activation="scaled_lrelu")
        self.generator = StyleGAN2Generator(**dataclasses.asdict(self.config.generator()))

    def encode(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """(B,3,S,S) in [-1,1] -> (w (B,D) after the mapping network, encoder features from S down to 4)."""
        feats = []
        for layer in self.encoder:
            x = layer(x)
            feats.append(x)
        code = self.final_linear(x.flatten(1))
        return self.generator.map(code), feats

    def decode(self, w: Tensor, feats: list[Tensor], *, fused: bool = True) -> Tensor:
        """Render w (B,D) or (B,num_ws,D) with encoder features -> (B,3,S,S), not clamped."""
        ordered = feats[::-1]  # 4x4 first
        noise = [ordered[0]] + [f for f in ordered[1:] for _ in range(2)]
        return self.generator.synthesis(self.generator.broadcast(w), noise=noise, fused=fused)

    def forward(self, x: Tensor, *, spatial_strength: float = 1.0, fused: bool = True) -> Tensor:
        """Restore (B,3,S,S) faces in [-1,1] -> (B,3,S,S), not clamped. Deterministic.

        ``spatial_strength`` scales the injected encoder features: 1 is the trained model, 0 renders the
        encoder's latent through the prior without spatial guidance.
        """
        w, feats = self.encode(x)
        if spatial_strength != 1.0:
            feats = [f * spatial_strength for f in feats]
        return self.decode(w, feats, fused=fused)
