"""StyleGAN2 generator config: the constructor arguments of :class:`StyleGAN2Generator`, bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...nn import Flavour

__all__ = ["StyleGAN2Config", "check_range", "check_taps"]


def check_range(owner: str, name: str, value: float, lo: float, hi: float) -> None:
    """One-line ValueError unless ``lo <= value <= hi`` (bounds every config value read from a file)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ValueError(f"{owner}: {name}={value!r} is out of range, expected a number in [{lo}, {hi}]")


def check_taps(owner: str, taps: tuple[float, ...]) -> None:
    """FIR taps: 1 to 8 finite numbers."""
    if not 1 <= len(taps) <= 8 or not all(isinstance(t, (int, float)) and abs(t) < 1e3 for t in taps):
        raise ValueError(f"{owner}: resample_taps={taps!r} must be 1 to 8 small numbers")


def check_power_of_two(owner: str, name: str, value: int, lo: int, hi: int) -> None:
    check_range(owner, name, value, lo, hi)
    if int(value) != value or int(value) & (int(value) - 1):
        raise ValueError(f"{owner}: {name}={value!r} must be a power of two in [{lo}, {hi}]")


@dataclass(frozen=True, kw_only=True)
class StyleGAN2Config:
    """Defaults: BasicSR's StyleGAN2-512 FFHQ prior (channel multiplier 1), the prior of GFPGAN v1."""

    size: int = 512  # output resolution, a power of two in [8, 2048]
    style_dim: int = 512  # z / w dimensionality
    n_mlp: int = 8  # mapping network depth
    channel_multiplier: int = 1  # width multiplier for resolutions >= 64 (config-f: 2)
    narrow: float = 1.0  # global width multiplier
    lr_mlp: float = 0.01  # mapping-network learning-rate multiplier
    flavour: Flavour = "original"  # 'original' (FIR, equalized) or 'clean' (GFPGAN bilinear)
    injection: Literal["add", "concat"] = "add"  # 'concat': GPEN feature injection instead of noise
    resample_taps: tuple[float, ...] = (1, 3, 3, 1)  # FIR taps (original flavour)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_power_of_two(owner, "size", self.size, 8, 2048)
        check_range(owner, "style_dim", self.style_dim, 1, 2048)
        check_range(owner, "n_mlp", self.n_mlp, 1, 16)
        check_range(owner, "channel_multiplier", self.channel_multiplier, 1, 4)
        check_range(owner, "narrow", self.narrow, 1 / 512, 4)
        check_range(owner, "lr_mlp", self.lr_mlp, 1e-6, 10)
        if self.flavour not in ("original", "clean") or self.injection not in ("add", "concat"):
            raise ValueError(f"{owner}: flavour must be 'original' or 'clean' and injection 'add' or 'concat'")
        object.__setattr__(self, "resample_taps", tuple(self.resample_taps))
        check_taps(owner, self.resample_taps)
