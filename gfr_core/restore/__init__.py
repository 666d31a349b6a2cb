"""Whole-photo restoration: :class:`FaceRestorer` (detect -> align -> restore -> paste) and its inference settings."""

from .compose import Composition
from .restorer import FaceRestorer
from .results import DEFAULT_FIDELITY, FaceResult, RestoreResult
from .settings import InferenceSettings, memory_reuse_enabled, optimize_for_inference, reuse_freed_memory
from .upsample import Tiling, upsample_photo, upsample_tiles

__all__ = [
    "Composition",
    "DEFAULT_FIDELITY",
    "FaceRestorer",
    "FaceResult",
    "InferenceSettings",
    "RestoreResult",
    "Tiling",
    "memory_reuse_enabled",
    "optimize_for_inference",
    "reuse_freed_memory",
    "upsample_photo",
    "upsample_tiles",
]
