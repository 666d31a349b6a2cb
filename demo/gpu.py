"""The app on a GPU lent per request (Hugging Face ZeroGPU), through the ``spaces`` package.

When ``spaces`` is importable, each callback that runs a network is wrapped in ``spaces.GPU`` with a
duration estimated from the request (:func:`photo_seconds`, :func:`clip_seconds`, ...); outside a ZeroGPU
Space its decorator returns the function unchanged. Models load on the CPU (at start-up on a Space,
``demo.logic.preload``) and move to CUDA inside the GPU call (:func:`device`, used by ``logic.get_restorer``).
Without ``spaces`` nothing changes.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

try:  # on a Space, `spaces` must be imported before torch initialises CUDA: app.py imports this module first
    import spaces
except ImportError:
    spaces = None

__all__ = ["clip_seconds", "device", "on_gpu", "photo_seconds", "prior_seconds", "zero_gpu"]

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

MAX_SECONDS = 300
"""The longest GPU lease asked for (ZeroGPU refuses much longer ones)."""

_DEVICE: contextvars.ContextVar[str | None] = contextvars.ContextVar("gfr_gpu_device", default=None)


def zero_gpu() -> bool:
    """True on a ZeroGPU Space (``spaces`` importable and ``SPACES_ZERO_GPU`` set)."""
    if spaces is None:
        return False
    from spaces.config import Config

    return bool(Config.zero_gpu)


def device() -> str | None:
    """The device of the GPU call running now ("cuda"), or None outside one."""
    return _DEVICE.get()


def on_gpu(duration: Callable[..., float]) -> Callable[[F], F]:
    """Run the decorated callback inside ``spaces.GPU(duration=...)`` when ``spaces`` is importable.

    ``duration`` takes the callback's arguments and returns the seconds to ask for (capped at
    :data:`MAX_SECONDS`). Inside the call, :func:`device` is "cuda" when CUDA is there.
    """

    def wrap(fn: F) -> F:
        if spaces is None:
            return fn

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            import torch

            token = _DEVICE.set("cuda" if torch.cuda.is_available() else None)
            try:
                return fn(*args, **kwargs)
            finally:
                _DEVICE.reset(token)

        def seconds(*args: Any, **kwargs: Any) -> int:
            try:
                return int(min(MAX_SECONDS, max(10, math.ceil(duration(*args, **kwargs)))))
            except Exception:  # a bad input: the callback itself says what is wrong, quickly
                return 10

        decorated = spaces.GPU(duration=seconds)(run)
        decorated.gpu_seconds = seconds  # the duration asked for a request (the tests read it)
        return decorated  # type: ignore[return-value]

    return wrap


def photo_seconds(
    path: str | None = None,
    model: str | None = None,
    fidelity: float = 0,
    upscale: float = 2,
    only_center: bool = False,
    aligned: bool = False,
    upsample: bool = False,
    backend: str = "torch",
    face_detail: bool = False,
    image: str | None = None,
    *_: Any,
    **__: Any,
) -> float:
    """GPU seconds for a photo: 15 s, plus Real-ESRGAN's ~2 s per input megapixel and ~1 s per face."""
    from gfr_core.io.image import peek_image

    src = path or image
    megapixels = 1.0
    if src and Path(src).is_file():
        head = peek_image(src)
        megapixels = head.width * head.height / 1e6
    return 15 + (2 * megapixels if upsample else 0) + (10 if face_detail else 0)


def clip_seconds(path: str | None = None, *_: Any, **__: Any) -> float:
    """GPU seconds for a clip: 15 s, plus ~0.1 s a frame (a 512 px model on a GPU, decode and encode)."""
    from gfr_core.video import probe_video

    frames = 300
    if path and Path(path).is_file():
        info = probe_video(path)
        frames = info.frames or math.ceil(info.duration * float(info.rate))
    return 15 + 0.1 * frames


def prior_seconds(*_: Any, **__: Any) -> float:
    """GPU seconds for the prior explorer: sampling, mixing, interpolation, or a projection of up to 300 steps."""
    return 60
