"""GFPGAN: a U-Net predicting the prior's w+ latents and SFT modulations (network, config, converters, cards)."""

from ..family import Family
from .cards import CARDS
from .config import GFPGANConfig
from .convert import CONVERTERS, from_official
from .network import GFPGAN, Conditions, ContextBlock, DetailHead, Encoding

FAMILY = Family(
    arch="gfpgan",
    network=GFPGAN,
    config=GFPGANConfig,
    task="restore",
    converters=CONVERTERS,
    cards=CARDS,
    from_official=from_official,
)

__all__ = ["FAMILY", "GFPGAN", "Conditions", "ContextBlock", "DetailHead", "Encoding", "GFPGANConfig"]
