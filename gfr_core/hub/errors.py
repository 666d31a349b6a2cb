"""Errors of the hub layer: each one's message is one line that says how to fix it."""

from __future__ import annotations

from ..models.family import UnmatchedKeysError

__all__ = ["ChecksumError", "ModelUnavailableError", "UnknownModelError", "UnmatchedKeysError", "UnsafeCheckpointError"]


class UnknownModelError(KeyError):
    """No registered model has this name."""

    def __str__(self) -> str:
        return str(self.args[0])


class ModelUnavailableError(RuntimeError):
    """The checkpoint file cannot be obtained (offline, not cached, unreachable Hub)."""


class ChecksumError(RuntimeError):
    """The downloaded or given file does not have the pinned sha256."""


class UnsafeCheckpointError(RuntimeError):
    """The checkpoint is a pickle that needs code execution to load; it is refused."""
