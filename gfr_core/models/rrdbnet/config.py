"""RRDBNet config: the constructor arguments of :class:`RRDBNet`, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ..stylegan2.config import check_range

__all__ = ["RRDBNetConfig"]


@dataclass(frozen=True, kw_only=True)
class RRDBNetConfig:
    """Defaults: Real-ESRGAN x4plus (``RealESRGAN_x4plus.pth``)."""

    scale: int = 4  # output / input size: 4, 2 (pixel-unshuffle by 2 first) or 1 (by 4 first)
    num_feat: int = 64  # trunk width
    num_block: int = 23  # RRDB blocks
    num_grow_ch: int = 32  # growth channels of each dense block

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.scale not in (1, 2, 4):
            raise ValueError(f"{owner}: scale={self.scale!r} must be 1, 2 or 4")
        check_range(owner, "num_feat", self.num_feat, 1, 512)
        check_range(owner, "num_block", self.num_block, 1, 64)
        check_range(owner, "num_grow_ch", self.num_grow_ch, 1, 256)
