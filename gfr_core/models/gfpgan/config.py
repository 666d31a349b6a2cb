"""GFPGAN config: the constructor arguments of :class:`GFPGAN`, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ...nn import Flavour
from ..stylegan2.config import StyleGAN2Config, check_power_of_two, check_range, check_taps

__all__ = ["GFPGANConfig"]


@dataclass(frozen=True, kw_only=True)
class GFPGANConfig:
    """Defaults: GFPGANv1Clean at 512 px, the v1.3 / v1.4 release."""

    out_size: int = 512  # input and output resolution, a power of two in [8, 2048]
    num_style_feat: int = 512  # latent dimensionality
    channel_multiplier: int = 2  # decoder width multiplier for resolutions >= 64 (v1: 1)
    narrow: float = 1.0  # global width multiplier; the U-Net is half as wide as the decoder
    sft_half: bool = True  # channel-split SFT (modulate half of the decoder channels)
    flavour: Flavour = "clean"  # 'clean' (v1.2/v1.3/v1.4) or 'original' (v1, paper model)
    num_mlp: int = 8  # depth of the decoder's (unused) mapping network
    lr_mlp: float = 0.01  # decoder mapping lr multiplier (original flavour)
    resample_taps: tuple[float, ...] = (1, 3, 3, 1)  # FIR taps (original flavour)
    detail_channels: int = 0  # width of the full-resolution DetailHead; 0: none (as released)
    detail_blocks: int = 0  # ContextBlocks in the DetailHead (with detail_channels > 0)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_power_of_two(owner, "out_size", self.out_size, 8, 2048)
        check_range(owner, "num_style_feat", self.num_style_feat, 1, 2048)
        check_range(owner, "channel_multiplier", self.channel_multiplier, 1, 4)
        check_range(owner, "narrow", self.narrow, 1 / 512, 4)
        check_range(owner, "num_mlp", self.num_mlp, 1, 16)
        check_range(owner, "lr_mlp", self.lr_mlp, 1e-6, 10)
        check_range(owner, "detail_channels", self.detail_channels, 0, 512)
        check_range(owner, "detail_blocks", self.detail_blocks, 0, 64)
        if not isinstance(self.sft_half, bool) or self.flavour not in ("original", "clean"):
            raise ValueError(f"{owner}: sft_half must be a bool and flavour 'original' or 'clean'")
        object.__setattr__(self, "resample_taps", tuple(self.resample_taps))
        check_taps(owner, self.resample_taps)

    def decoder(self) -> StyleGAN2Config:
        """The config of the StyleGAN2 decoder inside."""
        return StyleGAN2Config(
            size=self.out_size,
            style_dim=self.num_style_feat,
            n_mlp=self.num_mlp,
            channel_multiplier=self.channel_multiplier,
            narrow=self.narrow,
            lr_mlp=self.lr_mlp,
            flavour=self.flavour,
            resample_taps=self.resample_taps,
        )
