"""CodeFormer: a transformer over a VQGAN codebook of faces, with controllable fusion (network, config,
converters, cards)."""

from ..family import Family
from .cards import CARDS
from .config import CodeFormerConfig, VQGANConfig
from .convert import CONVERTERS, from_official, vqgan_from_official
from .network import CodeFormer, VQAutoEncoder

FAMILY = Family(
    arch="codeformer",
    network=CodeFormer,
    config=CodeFormerConfig,
    task="restore",
    converters=CONVERTERS,
    cards=CARDS,
    from_official=from_official,
)

VQGAN_FAMILY = Family(
    arch="codeformer-vqgan",
    network=VQAutoEncoder,
    config=VQGANConfig,
    task="prior",
    converters=CONVERTERS,
    cards=(),
    from_official=vqgan_from_official,
)
"""The stage-I VQGAN alone: CodeFormer's codebook prior, trained before the transformer."""

__all__ = ["CodeFormer", "CodeFormerConfig", "FAMILY", "VQAutoEncoder", "VQGANConfig", "VQGAN_FAMILY"]
