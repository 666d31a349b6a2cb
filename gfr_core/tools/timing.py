"""Timing helpers shared by the ``gfr bench`` modules (:mod:`.bench`, :mod:`.bench_variants`,
:mod:`.bench_photo`, :mod:`.bench_video`): wall-clock timing with device sync, per-face statistics, the
device's name, peak memory, and a measurement in a fresh process."""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["device_name", "per_face_stats", "rss_mb", "run_child", "sync", "time_calls"]


def sync(device: torch.device) -> None:
    """Wait until the device has finished its queued work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], Any], device: torch.device, *, warmup: int, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def rss_mb() -> float:
    """Peak resident memory of this process in MB.

    On Linux this is ``VmHWM`` of the current address space: ``ru_maxrss`` would also carry the peak of
    the parent a child was forked from (it survives ``exec``), which made a "fresh" child report the
    parent's memory.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_face_stats(times: list[float], faces: int, gflops: float, peak: float) -> dict[str, float]:
    per_face = [t / faces for t in times]
    med = statistics.median(per_face)
    return dict(
        per_face_median_s=med,
        per_face_min_s=min(per_face),
        per_face_max_s=max(per_face),
        faces_per_s=1 / med,
        gflops_per_s=gflops / med,
        fraction_of_peak=gflops / med / peak,
    )


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run_child(entry: str, kwargs: dict[str, Any], module: str) -> dict[str, Any]:
    """Call ``<module>.<entry>(json)`` in a fresh Python process with this one's thread count.

    Returns the JSON object the child prints last, or ``{"error": <last stderr line>}``.
    """
    import subprocess
    import sys

    code = (
        f"import torch, {module} as b; torch.set_num_threads({torch.get_num_threads()}); "
        f"b.{entry}({json.dumps(kwargs)!r})"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit code {res.returncode}"
        return {"error": tail}
    return json.loads(res.stdout.strip().splitlines()[-1])
