"""ParseNet: 19-class face parsing (network, config, converter from facexlib / GPEN keys, card)."""

from ..family import Family
from .cards import CARDS, FACE_LABELS
from .config import ParseNetConfig
from .convert import CONVERTERS, from_official
from .network import ConvNormAct, ParseNet, ParseResBlock

FAMILY = Family(
    arch="parsenet",
    network=ParseNet,
    config=ParseNetConfig,
    task="parse",
    converters=CONVERTERS,
    cards=CARDS,
    from_official=from_official,
)

__all__ = ["FACE_LABELS", "FAMILY", "ConvNormAct", "ParseNet", "ParseNetConfig", "ParseResBlock"]
