"""ParseNet config: the constructor arguments of :class:`ParseNet`, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ..stylegan2.config import check_range

__all__ = ["ParseNetConfig"]


@dataclass(frozen=True, kw_only=True)
class ParseNetConfig:
    """Defaults: facexlib's ``parsing_parsenet.pth`` (GPEN's ``ParseNet-latest.pth`` has the same layout)."""

    size: int = 512  # input and output resolution (a power of two)
    min_feat_size: int = 32  # resolution of the residual body
    base_ch: int = 64  # channels after the stem
    num_classes: int = 19  # parsing labels
    res_depth: int = 10  # residual blocks in the body
    min_ch: int = 32  # channels are clipped to [min_ch, max_ch]
    max_ch: int = 256

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name, value in (("size", self.size), ("min_feat_size", self.min_feat_size)):
            check_range(owner, name, value, 4, 2048)
            if value & (value - 1):
                raise ValueError(f"{owner}: {name}={value} must be a power of two")
        if self.min_feat_size > self.size:
            raise ValueError(f"{owner}: min_feat_size={self.min_feat_size} exceeds size={self.size}")
        check_range(owner, "base_ch", self.base_ch, 1, 1024)
        check_range(owner, "num_classes", self.num_classes, 1, 256)
        check_range(owner, "res_depth", self.res_depth, 0, 64)
        check_range(owner, "min_ch", self.min_ch, 1, 1024)
        check_range(owner, "max_ch", self.max_ch, self.min_ch, 1024)
