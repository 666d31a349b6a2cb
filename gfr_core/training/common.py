"""What both training loops share: device and precision, EMA, signals, atomic state files, data."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data import aligned_faces, load_prealigned, split_sources
from ..io.tensor import to_uint8
from .config import PRECISIONS

__all__ = [
    "autocast",
    "cpu_bf16_native",
    "device",
    "ema",
    "faces",
    "grid",
    "hardware",
    "load_state",
    "save_state",
    "stop_on_signal",
]

log = logging.getLogger(__name__)


def device(name: str) -> torch.device:
    """'auto': CUDA where present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(dev: torch.device, precision: str) -> torch.autocast:
    """Autocast context of the training steps. bf16 on CPU uses AMX / AVX-512-BF16 where present: the 64 px
    restorer's step measured 1.5x faster (narrow 0.125) to 1.9x (narrow 0.25) on the development CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    bf16 = precision == "bf16" or (precision == "auto" and dev.type == "cuda")
    if bf16 and dev.type == "cpu" and cpu_bf16_native() is False:
        log.warning(
            "this CPU has neither AVX-512-BF16 nor AMX, so bf16 is emulated here and slower than fp32 "
            "(~2x per step measured on AVX2): train with --precision fp32 on this machine"
        )
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)


def cpu_bf16_native() -> bool | None:
    """Whether this x86 CPU computes bf16 natively (AVX-512-BF16 or AMX tiles); None where torch cannot tell."""
    checks = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if platform.machine().lower() not in ("x86_64", "amd64") or not all(checks):
        return None
    return any(check() for check in checks)


def ema(average: nn.Module, model: nn.Module, beta: float) -> None:
    """Move ``average``'s parameters towards ``model``'s by ``1 - beta``; copy the buffers."""
    with torch.no_grad():
        for pe, p in zip(average.parameters(), model.parameters()):
            pe.lerp_(p.detach(), 1 - beta)
        for be, b in zip(average.buffers(), model.buffers()):
            be.copy_(b)


@contextlib.contextmanager
def stop_on_signal(*, escalate: bool = True) -> Iterator[threading.Event]:
    """Turn the first SIGINT / SIGTERM into a request to stop after the current step (and save).

    Yields the event the training loop checks. A second signal raises KeyboardInterrupt as usual, unless
    ``escalate`` is False (under ``torchrun``, where Ctrl-C reaches a process twice: from the terminal, then
    from the launcher). Outside the main thread (where handlers cannot be installed) the event is never set.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(signum: int, frame: Any) -> None:
        if stop.is_set():
            if escalate:
                raise KeyboardInterrupt
            return
        log.warning(
            "%s: stopping after this step and saving the state (send it again to stop at once, unsaved)",
            signal.Signals(signum).name,
        )
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` atomically (a temporary file, then a rename)."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def grid(images: Tensor, nrow: int) -> np.ndarray:
    """(B,3,H,W) in [-1,1] -> one uint8 RGB mosaic, ``nrow`` images a row."""
    x = to_uint8(images)
    rows = [np.concatenate(list(x[i : i + nrow]), axis=1) for i in range(0, len(x), nrow)]
    return np.concatenate(rows, axis=0)


def hardware(dev: torch.device) -> str:
    """One line naming the device, for training records."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def faces(data: str, split: str, zoom: float, limit: int | None, prealigned: bool = False) -> np.ndarray:
    """The aligned 128 px faces of a split: (N,128,128,3) uint8 RGB."""
    try:
        sources = split_sources(data, split)
    except FileNotFoundError as exc:  # said as one line by the CLI (it catches ValueError)
        raise ValueError(str(exc)) from None
    if prealigned:
        found = load_prealigned(sources, size=128, limit=limit)
    else:
        found, _ = aligned_faces(sources, size=128, zoom=zoom, limit=limit, progress=False)
    if len(found) == 0:
        raise ValueError(
            f"--data {data}: no face found in its {split} photos ({', '.join(s.name for s in sources)}); "
            "give photos with a visible face (or --prealigned true for aligned crops)"
        )
    return found


def load_state(module: nn.Module, state: dict[str, Tensor]) -> None:
    """``load_state_dict(strict=True)``; a state saved before ``w_avg`` became a buffer gets the module's own."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    if missing and all(k.endswith("w_avg") for k in missing):
        state = {**state, **{k: own[k] for k in missing}}
    module.load_state_dict(state)
