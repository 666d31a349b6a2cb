"""``gfr bench`` on whole photos: the pipeline's stages, the Real-ESRGAN upsampler, and peak memory on a
24-megapixel photo, all on synthetic photos whose faces ``embedded-prior`` renders (so the detector finds
them)."""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from ..hub import build_model, get_card
from .timing import device_name, rss_mb, run_child

__all__ = ["bench_memory", "bench_pipeline", "bench_upsampler", "synthetic_photo", "timing_restorer"]


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
    canvas = synthetic_photo(photo_size, photo_size, faces, face_px=photo_size // cols * 3 // 4, cols=cols)
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
    photo = synthetic_photo(photo_size, photo_size, faces, face_px=photo_size // cols * 3 // 4, cols=cols)
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
        device=device_name(torch.device(device)),
        photo=f"{w}x{h}",
        faces_found=len(res.faces),
        tiling=f"{restorer.tiling.tile}+{restorer.tiling.pad} px",
        restore_s=t1 - t0,
        face_detail_s=t2 - t1,
        face_detail_per_face_s=(t2 - t1) / n,
        background_s=t3 - t2,
        background_per_input_mp_s=(t3 - t2) / (w * h / 1e6),
    )


def synthetic_photo(width: int, height: int, faces: int, face_px: int, cols: int | None = None) -> np.ndarray:
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
    kwargs = dict(model=model, megapixels=megapixels, faces=faces, upscale=upscale, device=device)
    return run_child("_memory_child", kwargs, module=__name__)


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


def _memory_child(args_json: str) -> None:
    """Body of :func:`bench_memory` (runs in the child process and prints one JSON line)."""
    a = json.loads(args_json)
    h = int(round((a["megapixels"] * 1e6 / 1.5) ** 0.5))
    w = int(round(h * 1.5))
    photo = synthetic_photo(w, h, a["faces"], face_px=h // 4)
    restorer, weights = timing_restorer(a["model"], a["device"])
    rss_before = rss_mb()
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
                peak_rss_mb=rss_mb(),
            )
        )
    )
