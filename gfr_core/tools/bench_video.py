"""``gfr bench --video``: frames per second of :func:`gfr_core.video.restore_video`, decode to encode.

The clip is made here: a face rendered by ``embedded-prior`` on a grey photo, moved along
:func:`gfr_core.video.synth.camera_path` and degraded frame by frame, 640x360 by default.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .bench_photo import synthetic_photo, timing_restorer
from .timing import device_name

__all__ = ["bench_video", "format_video_report"]

RUNS = (  # (label, upscale, temporal)
    ("x1, --temporal on", 1.0, True),
    ("x2, --temporal on", 2.0, True),
    ("x2, --temporal off", 2.0, False),
)


def bench_video(
    model: str = "embedded", *, size: tuple[int, int] = (640, 360), frames: int = 96, device: str = "cpu"
) -> dict[str, Any]:
    """Frames per second restoring a ``size`` clip of ``frames`` frames with one face, for each of :data:`RUNS`.

    The model is loaded and the detector warmed up before timing; everything else (decoding, detection,
    tracking, restoring, pasting, H.264 encoding, muxing) is timed.
    """
    from ..video import probe_video, restore_video
    from ..video.synth import make_clip

    w, h = size
    restorer, weights = timing_restorer(model, device)
    photo = synthetic_photo(2 * w, 2 * h, 1, face_px=h)
    runs = []
    with tempfile.TemporaryDirectory(prefix="gfr-bench-video-") as d:
        src = Path(d) / "clip.mp4"
        make_clip(photo, src, frames=frames, fps=24, size=size, audio=True)
        info = probe_video(src)
        restorer.detect(photo[:h, :w])  # load the detector outside the timing
        for label, upscale, temporal in RUNS:
            dst = Path(d) / f"out-{upscale:g}-{temporal}.mp4"
            t = time.perf_counter()
            res = restore_video(restorer, src, dst, upscale=upscale, temporal=temporal)
            seconds = time.perf_counter() - t
            runs.append(
                dict(
                    run=label,
                    output=f"{res.size[0]}x{res.size[1]}",
                    frames=res.frames,
                    faces_per_frame=res.faces / max(1, res.frames),
                    seconds=seconds,
                    fps=res.frames / seconds,
                )
            )
    return dict(
        model=model,
        weights=weights,
        device=device_name(torch.device(device)),
        threads=torch.get_num_threads(),
        clip=f"{info.width}x{info.height}, {info.frames} frames at {float(info.rate):g} fps, one face, with sound",
        runs=runs,
    )


def format_video_report(report: dict[str, Any]) -> str:
    """Markdown table of :func:`bench_video`'s result."""
    lines = [
        f"video ({report['model']}, {report['weights']} weights, {report['device']}, {report['threads']} threads; "
        f"{report['clip']})",
        "",
        "| run | output | faces per frame | seconds | frames per second |",
        "|---|---|---:|---:|---:|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['run']} | {r['output']} | {r['faces_per_frame']:.2f} | {r['seconds']:.2f} | {r['fps']:.1f} |"
        )
    return "\n".join(lines)
