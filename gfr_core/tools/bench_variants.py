"""``gfr bench --variants``: each execution choice of :class:`gfr_core.restore.InferenceSettings` timed on its
own (memory format, modulated-conv formulation, batching, reduced-precision autocast, ``torch.compile`` with
its compile time, reuse of freed memory on CPU), with its error against the fp32 reference. This is how
the per-device defaults were chosen."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from ..restore import InferenceSettings, memory_reuse_enabled, optimize_for_inference, reuse_freed_memory
from .timing import per_face_stats, sync, time_calls

__all__ = ["bench_variants"]


def _variant_settings(dev: torch.device, batch: int) -> list[tuple[str, InferenceSettings, int]]:
    """The execution choices measured one by one by ``gfr bench --variants`` (name, settings, faces per forward)."""
    cuda = dev.type == "cuda"
    base = InferenceSettings(dev.type, fused=True, channels_last=False, autocast_dtype=None, compile=False)
    low = torch.bfloat16
    out = [
        ("inference_mode, NCHW, grouped modconv, batch 1", base, 1),
        ("+ channels_last", replace(base, channels_last=True), 1),
        ("shared-weight modconv, NCHW, batch 1", replace(base, fused=False), 1),
        ("shared-weight modconv, channels_last, batch 1", replace(base, fused=False, channels_last=True), 1),
        (f"grouped modconv, NCHW, batch {batch}", base, batch),
        (f"shared-weight modconv, NCHW, batch {batch}", replace(base, fused=False), batch),
        (f"shared-weight modconv, channels_last, batch {batch}", replace(base, fused=False, channels_last=True), batch),
        (
            "bf16 autocast, grouped modconv, channels_last, batch 1",
            replace(base, channels_last=True, autocast_dtype=low),
            1,
        ),
        (
            f"bf16 autocast, shared-weight modconv, channels_last, batch {batch}",
            replace(base, fused=False, channels_last=True, autocast_dtype=low),
            batch,
        ),
    ]
    if not cuda:  # Winograd F(4,3) for the wide 3x3 convs (gfr_core.nn.winograd)
        out.append(
            (
                "Winograd F(4,3), shared-weight modconv, channels_last, batch 1",
                replace(base, fused=False, channels_last=True, winograd=True),
                1,
            )
        )
    if cuda:
        out.append(
            (
                f"fp16 autocast, shared-weight modconv, channels_last, batch {batch}",
                replace(base, fused=False, channels_last=True, autocast_dtype=torch.float16),
                batch,
            )
        )
    return out


def bench_variants(
    model: torch.nn.Module,
    xb: torch.Tensor,
    ref: torch.Tensor,
    *,
    is_gfpgan: bool,
    gflops: float,
    peak: float,
    repeats: int,
    warmup: int,
    compile: bool,
) -> list[dict[str, Any]]:
    """Time each execution choice on its own (a fresh copy of ``model`` each), with its error vs ``ref``.

    Args:
        model: The fp32 eval model (left unchanged).
        xb: (N,3,S,S) inputs in [-1,1]; variants with batch 1 use the first face.
        ref: fp32 NCHW grouped-modconv output for ``xb`` with the stored noise.
        compile: Also time ``torch.compile`` of the channels_last fp32 variants (compile time reported).
    """
    import copy

    dev = xb.device
    specs = _variant_settings(dev, xb.shape[0])
    if compile:
        to_compile = [*specs[1:4:2], *(spec for spec in specs if spec[1].winograd)]
        specs += [(f"torch.compile, {name}", replace(st, compile=True), b) for name, st, b in to_compile]
    if dev.type == "cpu":  # the allocator setting on the fp32 shared-weight channels_last variants
        specs += [
            (f"{name}, freed memory reused", replace(st, reuse_memory=True), b)
            for name, st, b in specs
            if not st.autocast_dtype and not st.fused and st.channels_last
        ]
    rows = []
    for name, st, b in specs:
        if st.reuse_memory != memory_reuse_enabled():  # process-wide: set per variant, in either direction
            reuse_freed_memory(st.reuse_memory)
        m = copy.deepcopy(model)
        t0 = time.perf_counter()
        fast = optimize_for_inference(m, st)
        x = st.prepare_input(xb[:b])

        def fwd(fast=fast, x=x, st=st) -> torch.Tensor:
            with torch.inference_mode(), st.autocast():
                return fast(x, **st.forward_kwargs(is_gfpgan))

        try:
            y = fwd().float()
        except Exception as exc:  # e.g. an autocast dtype the device does not support
            rows.append(dict(variant=name, batch=b, error=f"{type(exc).__name__}: {exc}"))
            continue
        sync(dev)
        first = time.perf_counter() - t0
        times = time_calls(fwd, dev, warmup=warmup, repeats=repeats)
        row = dict(
            variant=name, batch=b, settings=st.describe(), first_call_s=first, **per_face_stats(times, b, gflops, peak)
        )
        row["max_abs_diff"] = float((y - ref[:b]).abs().max())
        row["relative_error"] = float((y - ref[:b]).norm() / ref[:b].norm())
        rows.append(row)
        del m, fast
    return rows
