"""RRDBNet: Real-ESRGAN's x4 upsampler (network, config, converters for the .pth and the ncnn pair, cards)."""

from ..family import Family
from .cards import CARDS
from .config import RRDBNetConfig
from .convert import CONVERTERS, ncnn_state_dict
from .network import RRDB, ResidualDenseBlock, RRDBNet

FAMILY = Family(
    arch="rrdbnet", network=RRDBNet, config=RRDBNetConfig, task="upsample", converters=CONVERTERS, cards=CARDS
)

__all__ = ["FAMILY", "RRDB", "RRDBNet", "RRDBNetConfig", "ResidualDenseBlock", "ncnn_state_dict"]
