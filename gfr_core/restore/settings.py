"""How a restorer runs on a device: measured defaults, memory reuse, and freezing a model for inference."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..nn import ConvLayer, ModulatedConv2d

__all__ = ["InferenceSettings", "memory_reuse_enabled", "optimize_for_inference", "reuse_freed_memory"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferenceSettings:
    """How a restorer runs on a device. Chosen from measurements (``gfr bench --variants``, benchmarks/RESULTS.md)."""

    device_type: str  # 'cpu' or 'cuda'
    fused: bool  # grouped-conv modulated conv (True) or activation scaling with shared weights (False)
    channels_last: bool  # NHWC memory format for the input and the 4-D weights
    autocast_dtype: torch.dtype | None  # reduced-precision autocast (bf16) or None for fp32
    compile: bool  # torch.compile the model
    batch_pixels: int = 1 << 30  # most face pixels (faces x S x S) per forward; bounds batch size and memory
    reuse_memory: bool = False  # CPU: keep freed large blocks in the heap for reuse (see reuse_freed_memory)
    winograd: bool = False  # Winograd F(4,3) for the wide 3x3 convs where it pays (nn.winograd_pays)

    @classmethod
    def for_device(cls, device: str | torch.device, *, compile: bool = False) -> InferenceSettings:
        """Defaults per device type, from measurements (``gfr bench --variants``, benchmarks/RESULTS.md).

        CPU: fp32, NHWC and the shared-weight modulated conv (as fast as the grouped form for one 512 px
        face, faster for batched small faces); one 512 px face per forward (batching 512 px faces measured
        slower per face: their activations no longer fit in cache), up to 8 faces of the 64 px embedded
        model. Large freed blocks are kept for reuse (:func:`reuse_freed_memory`): without it a 512 px
        forward spends ~30 % of its time page-faulting fresh memory. The 3x3 convs of >= 128 channels at
        8-256 px run as Winograd F(4,3) in cache-sized chunks (:mod:`gfr_core.nn.winograd`): ~1.3x per
        512 px face, eager or compiled. ``compile=True`` is another ~1.1x at 512 px but costs 4-5 min of
        compilation with a cold cache: for batch jobs.
        CUDA: the shared-weight form (one large conv per layer instead of a grouped one), NHWC, bf16
        autocast and large batches; not yet measured on a GPU.
        """
        dev = torch.device(device)
        if dev.type == "cuda":
            return cls(
                "cuda",
                fused=False,
                channels_last=True,
                autocast_dtype=torch.bfloat16,
                compile=compile,
                batch_pixels=32 * 512 * 512,
            )
        return cls(
            dev.type,
            fused=False,
            channels_last=True,
            autocast_dtype=None,
            compile=compile,
            batch_pixels=8 * 64 * 64,
            reuse_memory=dev.type == "cpu",
            winograd=dev.type == "cpu",
        )

    def faces_per_forward(self, face_size: int) -> int:
        """Faces per forward at ``face_size`` under this device's pixel budget (at least 1)."""
        return max(1, self.batch_pixels // (face_size * face_size))

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self):
        import contextlib

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def forward_kwargs(self, is_gfpgan: bool) -> dict[str, object]:
        return {"fused": self.fused, **({"noise_mode": "const"} if is_gfpgan else {})}

    def describe(self) -> dict[str, object]:
        return dict(
            fused_modconv=self.fused,
            channels_last=self.channels_last,
            autocast=str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else "fp32",
            compile=self.compile,
            batch_pixels=self.batch_pixels,
            reuse_memory=self.reuse_memory,
            winograd=self.winograd,
        )


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -3, -4, -8  # glibc mallopt parameters (malloc.h)
_memory_reuse = False  # whether reuse_freed_memory(True) is in effect in this process


def reuse_freed_memory(enable: bool = True) -> bool:
    """Let glibc serve large tensors from its heap and keep freed memory for reuse (process-wide).

    By default glibc gives every allocation over 32 MiB its own ``mmap`` and unmaps it on free, so every
    large activation of a forward arrives as fresh pages that the kernel faults in and zeroes: one 512 px
    GFPGAN forward took 0.84 M minor page faults and 1.2 s of kernel time on the 2-vCPU bench machine
    (benchmarks/RESULTS.md). With ``mmap`` off and up to 1 GiB of freed heap kept, the second forward
    faults nothing. The cost: the process keeps that memory resident between photos.

    Threads allocate from per-thread arenas whose heaps cannot hold such blocks, so this also limits
    glibc to the one main arena. A thread that has already allocated keeps its own arena: in a threaded
    server call this before the worker threads start (``app.py`` does).

    Args:
        enable: ``False`` puts back glibc's settled default (``mmap`` above 32 MiB, trim above 64 MiB,
            8 arenas per core) and returns the kept memory to the system. Blocks still free in the heap
            can serve later requests, so this is not a fresh process (``gfr bench`` uses one per model).

    Returns:
        True where it was applied (Linux with glibc), False elsewhere (nothing changes).
    """
    import ctypes
    import os
    import platform

    global _memory_reuse
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    if enable:
        settings = [(_M_TRIM_THRESHOLD, 1 << 30), (_M_MMAP_MAX, 0), (_M_ARENA_MAX, 1)]
    else:
        settings = [
            (_M_MMAP_THRESHOLD, 32 << 20),
            (_M_TRIM_THRESHOLD, 64 << 20),
            (_M_MMAP_MAX, 65536),
            (_M_ARENA_MAX, 8 * (os.cpu_count() or 1)),
        ]
    ok = all(libc.mallopt(param, value) == 1 for param, value in settings)
    if ok and not enable:
        libc.malloc_trim(0)
    if not ok:
        log.warning("mallopt refused the allocator settings %s", settings)
    _memory_reuse = enable and ok
    return ok


def memory_reuse_enabled() -> bool:
    """Whether :func:`reuse_freed_memory` is in effect in this process."""
    return _memory_reuse


def optimize_for_inference(model: nn.Module, settings: InferenceSettings) -> nn.Module:
    """Freeze ``model`` for inference with ``settings`` (memory format, compilation). Returns the callable to use.

    With ``channels_last`` the 4-D conv weights are stored NHWC; the 5-D modulated-conv weights are left
    as they are (they are rebuilt per sample in each forward). With ``winograd`` the 3x3 convs whose
    channel pair pays (:func:`gfr_core.nn.winograd_pays`) use Winograd F(4,3); the others, and every conv
    when it is off, use the direct convolution.
    """
    model.eval().requires_grad_(False)
    if settings.reuse_memory:
        reuse_freed_memory()
    if settings.channels_last:
        for t in [*model.parameters(), *model.buffers()]:
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=torch.channels_last)
    for m in model.modules():
        if isinstance(m, (ConvLayer, ModulatedConv2d)):
            m.use_winograd(settings.winograd)
    if settings.compile:
        # freezing: weights become constants, so inductor can pre-pack conv weights and fold the
        # weight-only arithmetic (equalized-lr gains, the shared-weight demodulation norms). On CUDA,
        # "reduce-overhead" also captures each (fixed) batch shape in a CUDA graph.
        mode = "reduce-overhead" if settings.device_type == "cuda" else None
        return torch.compile(model, mode=mode, dynamic=False, options={"freezing": True})
    return model
