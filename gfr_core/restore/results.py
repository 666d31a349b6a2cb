"""What a restoration returns (:class:`RestoreResult`, one :class:`FaceResult` per face), and the checks of
its arguments shared by the photo and clip paths."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.image import LoadedImage

__all__ = [
    "DEFAULT_FIDELITY",
    "FaceResult",
    "RestoreResult",
    "check_fidelity",
    "check_image",
    "check_upscale",
    "model_kwargs",
]

DEFAULT_FIDELITY = 0.0
"""The full restoration (chosen from measurement on real photographs: benchmarks/PHOTOS.md)."""


@dataclass(frozen=True)
class FaceResult:
    """One face of a photo."""

    box: np.ndarray  # (4,) x1, y1, x2, y2 in input-photo pixels
    landmarks: np.ndarray  # (5,2) in input-photo pixels
    score: float  # detector confidence (1.0 for aligned input)
    affine: np.ndarray  # (2,3) photo -> aligned crop
    aligned: np.ndarray  # (S,S,3) uint8 RGB crop fed to the model
    restored: np.ndarray  # (S,S,3) uint8 RGB model output


@dataclass(frozen=True)
class RestoreResult:
    """The restored photo and what was done to it."""

    image: np.ndarray  # (H*up,W*up[,C]) uint8; gray stays (H,W), RGBA keeps its (upscaled) alpha
    faces: list[FaceResult]  # detected faces in decreasing size
    upscale: float  # output / input size
    messages: list[str] = field(default_factory=list)  # remarks for the user (no face found, conversions)


def check_fidelity(fidelity: float) -> float:
    """``fidelity`` as a float in [0, 1], or ``ValueError``."""
    if isinstance(fidelity, bool) or not isinstance(fidelity, (int, float, np.floating, np.integer)):
        raise ValueError(f"fidelity must be a number in [0, 1], got {type(fidelity).__name__}")
    f = float(fidelity)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"fidelity must be in [0, 1], got {fidelity}")
    return f


def check_upscale(upscale: float) -> float:
    """``upscale`` as a float in [1, 8], or ``ValueError``."""
    if isinstance(upscale, bool) or not isinstance(upscale, (int, float, np.floating, np.integer)):
        raise ValueError(f"upscale must be a number between 1 and 8, got {type(upscale).__name__}")
    if not 1 <= upscale <= 8:
        raise ValueError(f"upscale must be between 1 and 8, got {upscale}")
    return float(upscale)


def check_image(image: object, what: str) -> None:
    """``ValueError`` unless ``image`` is an array or a :class:`~gfr_core.io.image.LoadedImage`."""
    if not isinstance(image, (np.ndarray, LoadedImage)):
        raise ValueError(f"{what} must be an (H,W,3) uint8 RGB numpy array, got {type(image).__name__}")


def model_kwargs(takes: set[str], *, mode: str, name: str, fused: bool, w: float | None) -> dict[str, object]:
    """The keywords a restorer's forward is called with, from the parameters it ``takes``: ``fused`` (the GAN
    priors' modulated convs), and CodeFormer's ``w`` and ``adain``: its ``mode``'s (colourisation 0 with
    AdaIN, inpainting 1 without), else ``w`` (0.5 by default, as released). A ``w`` for a model without one,
    or out of [0, 1], is a ``ValueError``."""
    kw: dict[str, object] = {"fused": fused} if "fused" in takes else {}
    if "w" not in takes:
        if w is not None:
            raise ValueError(f"w is CodeFormer's fidelity weight; {name} has none (use fidelity)")
        return kw
    if mode != "restore":
        if w is not None:
            raise ValueError(f"{name} runs at its own w ({'0' if mode == 'colorize' else '1'}); leave w out")
        return kw | ({"w": 0.0, "adain": True} if mode == "colorize" else {"w": 1.0, "adain": False})
    w = 0.5 if w is None else float(w)
    if not 0 <= w <= 1:
        raise ValueError(f"w must be in [0, 1] (0: the codebook's face, 1: closest to the input), got {w}")
    return kw | {"w": w, "adain": True}
