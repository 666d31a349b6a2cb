"""Model hub: the registry of cards, downloads (the only network access), checkpoint files, strict loading.

Loading goes::

    card -> resolve_file (package / cache / Hub, then release URLs) -> size + sha256 check
        -> safetensors / torch.load(weights_only=True) -> the family's strict converter
        -> load_state_dict(strict=True) -> eval()
"""

from .checkpoint import load_checkpoint, save_checkpoint, sha256_file, unwrap_checkpoint
from .download import (
    confirm_digest,
    default_restorer,
    download_dir,
    forget_digest,
    is_cached,
    local_path,
    offline,
    reachable,
    resolve_file,
    unavailable_advice,
)
from .errors import ChecksumError, ModelUnavailableError, UnknownModelError, UnmatchedKeysError, UnsafeCheckpointError
from .loading import ALIASES, load_model, model_card, resolve_alias
from .registry import (
    ARCHITECTURES,
    BEST_MODEL,
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
    "BEST_MODEL",
    "DEFAULT_MODEL",
    "ChecksumError",
    "ModelCard",
    "ModelUnavailableError",
    "UnknownModelError",
    "UnmatchedKeysError",
    "UnsafeCheckpointError",
    "build_model",
    "confirm_digest",
    "convert_state_dict",
    "default_restorer",
    "download_dir",
    "forget_digest",
    "family",
    "get_card",
    "is_cached",
    "list_models",
    "load_checkpoint",
    "load_model",
    "local_path",
    "model_card",
    "offline",
    "reachable",
    "register",
    "resolve_alias",
    "resolve_file",
    "save_checkpoint",
    "sha256_file",
    "unavailable_advice",
    "unwrap_checkpoint",
]
