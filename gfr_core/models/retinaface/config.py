"""RetinaFace-R50 config."""

from __future__ import annotations

from dataclasses import dataclass

from ..stylegan2.config import check_range

__all__ = ["RetinaFaceConfig"]


@dataclass(frozen=True, kw_only=True)
class RetinaFaceConfig:
    """Defaults: facexlib's ``detection_Resnet50_Final.pth``."""

    fpn_channels: int = 256  # FPN / SSH width
    num_anchors: int = 2  # anchors per location

    def __post_init__(self) -> None:
        check_range(type(self).__name__, "fpn_channels", self.fpn_channels, 8, 1024)
        check_range(type(self).__name__, "num_anchors", self.num_anchors, 1, 8)
