"""gfr_core: GAN-prior face restoration (StyleGAN2, GFPGAN, GPEN) in plain PyTorch.

Public API::

    from gfr_core import FaceRestorer, list_models, load_model
    restorer = FaceRestorer.from_pretrained("gfpgan-v1.4")   # Hub download, pinned and sha256-checked
    result = restorer(rgb_uint8)                              # RestoreResult(image, faces, ...)

Submodules ``analysis`` (prior exploration), ``degrade`` (degradation model, :mod:`gfr_core.data.degrade`)
and ``evaluate`` (metrics, :mod:`gfr_core.metrics`) are public too; the notebooks use nothing else.
The folders, one layer each: ``nn`` -> ``models`` -> ``hub``; ``io``, ``face`` -> ``restore``;
``data``, ``metrics``, ``training``, ``analysis``; ``tools`` (CLI, bench, verify).
"""

from . import analysis
from . import metrics as evaluate
from .data import degrade
from .face import Detection, detect_faces
from .hub import (
    ChecksumError,
    ModelCard,
    ModelUnavailableError,
    UnknownModelError,
    UnsafeCheckpointError,
    get_card,
    is_cached,
    list_models,
    load_model,
    model_card,
    save_checkpoint,
)
from .io import ImageInputError, LoadedImage, read_image, write_image
from .models import GFPGAN, GPEN, StyleGAN2Discriminator, StyleGAN2Generator, mix_latents
from .restore import DEFAULT_FIDELITY, FaceRestorer, FaceResult, RestoreResult

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_FIDELITY",
    "GFPGAN",
    "GPEN",
    "ChecksumError",
    "Detection",
    "FaceRestorer",
    "FaceResult",
    "ImageInputError",
    "LoadedImage",
    "ModelCard",
    "ModelUnavailableError",
    "RestoreResult",
    "StyleGAN2Discriminator",
    "StyleGAN2Generator",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "analysis",
    "degrade",
    "detect_faces",
    "evaluate",
    "get_card",
    "is_cached",
    "list_models",
    "load_model",
    "mix_latents",
    "model_card",
    "read_image",
    "save_checkpoint",
    "write_image",
]
