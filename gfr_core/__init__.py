"""gfr_core: GAN-prior face restoration (StyleGAN2, GFPGAN, GPEN) in plain PyTorch.

Public API::

    from gfr_core import list_models, load_model
    model = load_model("gfpgan-v1.4")          # downloads from the Hub (pinned, sha256-checked)
"""

from .hub import (
    ChecksumError,
    ModelCard,
    ModelUnavailableError,
    UnknownModelError,
    UnsafeCheckpointError,
    get_card,
    list_models,
    load_model,
)
from .models import GFPGAN, GPEN, StyleGAN2Discriminator, StyleGAN2Generator, mix_latents

__version__ = "0.1.0"

__all__ = [
    "GFPGAN",
    "GPEN",
    "ChecksumError",
    "ModelCard",
    "ModelUnavailableError",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "get_card",
    "list_models",
    "load_model",
    "mix_latents",
]
