"""Model hub: the registry of cards, downloads (the only network access), checkpoint files, strict loading.

Loading goes::

    card -> resolve_file (package / HF cache / hf_hub_download) -> size + sha256 check
        -> safetensors / torch.load(weights_only=True) -> the family's strict converter
        -> load_state_dict(strict=True) -> eval()
"""

from .checkpoint import load_checkpoint, save_checkpoint, sha256_file, unwrap_checkpoint
from .download import is_cached, offline, resolve_file
from .errors import ChecksumError, ModelUnavailableError, UnknownModelError, UnmatchedKeysError, UnsafeCheckpointError
from .loading import ALIASES, load_model, model_card, resolve_alias
from .registry import (
    ARCHITECTURES,
    DEFAULT_MODEL,
    ModelCard,
    build_model,
    convert_state_dict,
    family,
    get_card,
    list_models,
    register,
)

__all__ = [
    "ALIASES",
    "ARCHITECTURES",
    "DEFAULT_MODEL",
    "ChecksumError",
    "ModelCard",
    "ModelUnavailableError",
    "UnknownModelError",
    "UnmatchedKeysError",
    "UnsafeCheckpointError",
    "build_model",
    "convert_state_dict",
    "family",
    "get_card",
    "is_cached",
    "list_models",
    "load_checkpoint",
    "load_model",
    "model_card",
    "offline",
    "register",
    "resolve_alias",
    "resolve_file",
    "save_checkpoint",
    "sha256_file",
    "unwrap_checkpoint",
]
