"""RestoreFormer and RestoreFormer++: a codebook prior queried by cross-attention (network, config,
converters, cards)."""

from ..family import Family
from .cards import CARDS
from .config import RestoreFormerConfig
from .convert import CONVERTERS, from_official
from .network import RestoreFormer

FAMILY = Family(
    arch="restoreformer",
    network=RestoreFormer,
    config=RestoreFormerConfig,
    task="restore",
    converters=CONVERTERS,
    cards=CARDS,
    from_official=from_official,
)

__all__ = ["FAMILY", "RestoreFormer", "RestoreFormerConfig"]
