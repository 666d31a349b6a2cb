"""GPEN config: the constructor arguments of :class:`GPEN`, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ..stylegan2.config import StyleGAN2Config, check_power_of_two, check_range, check_taps

__all__ = ["GPENConfig"]


@dataclass(frozen=True, kw_only=True)
class GPENConfig:
    """Defaults: GPEN-BFR-512."""

    size: int = 512  # input and output resolution, a power of two in [8, 2048]
    style_dim: int = 512  # latent dimensionality
    n_mlp: int = 8  # mapping network depth
    channel_multiplier: int = 2  # width multiplier for resolutions >= 64 (BFR-256: 1)
    narrow: float = 1.0  # global width multiplier (BFR-256: 0.5)
    lr_mlp: float = 0.01  # mapping lr multiplier
    resample_taps: tuple[float, ...] = (1, 3, 3, 1)  # FIR taps

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_power_of_two(owner, "size", self.size, 8, 2048)
        check_range(owner, "style_dim", self.style_dim, 1, 2048)
        check_range(owner, "n_mlp", self.n_mlp, 1, 16)
        check_range(owner, "channel_multiplier", self.channel_multiplier, 1, 4)
        check_range(owner, "narrow", self.narrow, 1 / 512, 4)
        check_range(owner, "lr_mlp", self.lr_mlp, 1e-6, 10)
        object.__setattr__(self, "resample_taps", tuple(self.resample_taps))
        check_taps(owner, self.resample_taps)

    def generator(self) -> StyleGAN2Config:
        """The config of the embedded StyleGAN2 generator."""
        return StyleGAN2Config(
            size=self.size,
            style_dim=self.style_dim,
            n_mlp=self.n_mlp,
            channel_multiplier=self.channel_multiplier,
            narrow=self.narrow,
            lr_mlp=self.lr_mlp,
            flavour="original",
            injection="concat",
            resample_taps=self.resample_taps,
        )
