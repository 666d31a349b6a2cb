"""StyleGAN2: the generative facial prior (network, config, converters, released cards)."""

from ..family import Family
from .cards import CARDS
from .config import StyleGAN2Config
from .convert import CONVERTERS, from_official
from .network import MappingNetwork, StyleGAN2Discriminator, StyleGAN2Generator, channel_table, mix_latents

FAMILY = Family(
    arch="stylegan2",
    network=StyleGAN2Generator,
    config=StyleGAN2Config,
    task="prior",
    converters=CONVERTERS,
    cards=CARDS,
    from_official=from_official,
)

__all__ = [
    "FAMILY",
    "MappingNetwork",
    "StyleGAN2Config",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "channel_table",
    "mix_latents",
]
