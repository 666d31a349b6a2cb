"""Whole-photo restoration: :class:`FaceRestorer` (detect -> align -> restore -> paste) and its inference settings."""

from .restorer import DEFAULT_FIDELITY, FaceRestorer, FaceResult, RestoreResult
from .settings import InferenceSettings, memory_reuse_enabled, optimize_for_inference, reuse_freed_memory

__all__ = [
    "DEFAULT_FIDELITY",
    "FaceRestorer",
    "FaceResult",
    "InferenceSettings",
    "RestoreResult",
    "memory_reuse_enabled",
    "optimize_for_inference",
    "reuse_freed_memory",
]
