"""GPEN: a GAN prior embedded in a U-shaped network (network, config, converters, cards)."""

from ..family import Family
from .cards import CARDS
from .config import GPENConfig
from .convert import CONVERTERS, from_official
from .network import GPEN

FAMILY = Family(
    arch="gpen",
    network=GPEN,
    config=GPENConfig,
    task="restore",
    converters=CONVERTERS,
    cards=CARDS,
    from_official=from_official,
)

__all__ = ["FAMILY", "GPEN", "GPENConfig"]
