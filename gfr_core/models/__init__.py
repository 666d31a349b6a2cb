"""Network architectures: StyleGAN2, GFPGAN and GPEN, composed from :mod:`gfr_core.nn`."""

from .gfpgan import GFPGAN
from .gpen import GPEN
from .stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator, mix_latents

__all__ = ["GFPGAN", "GPEN", "StyleGAN2Discriminator", "StyleGAN2Generator", "mix_latents"]
