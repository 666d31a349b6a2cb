"""Every network, one family per folder, composed from :mod:`gfr_core.nn`.

Families with released checkpoints (``stylegan2``, ``gfpgan``, ``gpen``, ``retinaface``, ``rrdbnet``, ``parsenet``) declare a
:class:`~gfr_core.models.family.Family`: network, frozen config, strict converters and cards, which
:mod:`gfr_core.hub` collects from :data:`FAMILIES`. The metric and loss networks (``arcface``,
``inception``, ``vgg``) load files found on disk (:mod:`gfr_core.models.local_weights`).
"""

from . import codeformer, gfpgan, gpen, parsenet, restoreformer, retinaface, rrdbnet, stylegan2
from .codeformer import CodeFormer, CodeFormerConfig, VQAutoEncoder, VQGANConfig
from .family import Family, ModelCard, UnmatchedKeysError
from .gfpgan import GFPGAN, GFPGANConfig
from .gpen import GPEN, GPENConfig
from .parsenet import ParseNet, ParseNetConfig
from .restoreformer import RestoreFormer, RestoreFormerConfig
from .retinaface import RetinaFace, RetinaFaceConfig
from .rrdbnet import RRDBNet, RRDBNetConfig
from .stylegan2 import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator, mix_latents

FAMILIES: tuple[Family, ...] = (
    gfpgan.FAMILY,
    gpen.FAMILY,
    stylegan2.FAMILY,
    retinaface.FAMILY,
    rrdbnet.FAMILY,
    parsenet.FAMILY,
    restoreformer.FAMILY,
    codeformer.FAMILY,
    codeformer.VQGAN_FAMILY,
)
"""The families the registry collects, in listing order."""

__all__ = [
    "FAMILIES",
    "CodeFormer",
    "CodeFormerConfig",
    "GFPGAN",
    "GPEN",
    "Family",
    "GFPGANConfig",
    "GPENConfig",
    "ModelCard",
    "ParseNet",
    "ParseNetConfig",
    "RestoreFormer",
    "RestoreFormerConfig",
    "RetinaFace",
    "RetinaFaceConfig",
    "RRDBNet",
    "RRDBNetConfig",
    "StyleGAN2Config",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "UnmatchedKeysError",
    "VQAutoEncoder",
    "VQGANConfig",
    "mix_latents",
]
