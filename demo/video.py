"""The Video tab's callback: a clip through :func:`gfr_core.video.restore_video`, within a shared server's limits.

Limits (environment variables, checked from the clip's header before any work):
``GFR_VIDEO_MAX_SECONDS`` (default 60), ``GFR_VIDEO_MAX_PIXELS`` per input frame (default 1280x720) and the
app's ``GFR_MAX_OUTPUT_PIXELS`` per output frame.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from gfr_core.video import VideoInputError, probe_video, restore_video

from . import gpu
from .logic import UPSCALE_STEP, _error, _number, env_limit, get_restorer, max_output_pixels, result_path

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_SECONDS", "restore_clip", "video_limits"]

DEFAULT_MAX_SECONDS = 60.0
DEFAULT_MAX_PIXELS = 1280 * 720


def video_limits() -> tuple[float, int]:
    """(longest clip in seconds, most pixels per input frame) in force."""
    seconds = env_limit("GFR_VIDEO_MAX_SECONDS", DEFAULT_MAX_SECONDS, "seconds", "60")
    pixels = int(env_limit("GFR_VIDEO_MAX_PIXELS", DEFAULT_MAX_PIXELS, "pixels", "921600"))
    return seconds, max(1, pixels)


@gpu.on_gpu(gpu.clip_seconds)
def restore_clip(path, model, fidelity, upscale, temporal=True, progress=gr.Progress()):
    """Video tab: (the restored MP4 with the clip's sound, status). Every refusal comes before any work."""
    if not path:
        raise _error("Upload a video clip first (MP4, MOV, MKV, WebM or AVI).")
    upscale, fidelity = _number(upscale, "Upscale", 1, 4), _number(fidelity, "Fidelity", 0, 1)
    max_seconds, max_pixels = video_limits()
    name = Path(path).name
    try:
        info = probe_video(path)
    except VideoInputError as exc:
        raise _error(str(exc).replace(str(path), name)) from None
    w, h = info.display_size
    if info.duration > max_seconds:
        raise _error(
            f"{name}: {info.duration:.1f} s is over this server's {max_seconds:g} s limit for clips "
            "(GFR_VIDEO_MAX_SECONDS); cut the clip, or run gfr restore on your own machine."
        )
    if w * h > max_pixels:
        raise _error(
            f"{name}: {w}x{h} frames are over this server's {max_pixels:,} pixels per frame (GFR_VIDEO_MAX_PIXELS); "
            "downscale the clip first."
        )
    if w * h * upscale**2 > max_output_pixels():
        best = max(1.0, (max_output_pixels() / (w * h)) ** 0.5 // UPSCALE_STEP * UPSCALE_STEP)
        raise _error(f"{name}: upscale {upscale:g} makes frames over this server's output limit; use {best:g}.")
    restorer = get_restorer(model)
    dst = result_path(("video", path, model, fidelity, upscale, bool(temporal)), path, ".mp4")
    progress(0, desc="restoring frames")
    try:
        res = restore_video(
            restorer,
            path,
            dst,
            upscale=upscale,
            fidelity=fidelity,
            temporal=bool(temporal),
            overwrite=True,
            max_seconds=max_seconds,
            max_pixels=max_pixels,
            progress=lambda done, total: (
                progress((done, total), desc="restoring frames", unit="frame")
                if total >= done
                else progress(0.5, desc=f"{done} frames restored")
            ),
        )
    except VideoInputError as exc:  # damage found part-way (a truncated file): nothing is kept
        raise _error(str(exc).replace(str(path), name)) from None
    status = (
        f"{res.frames} frames, {res.faces} face crops restored with {model}; output {res.size[0]}x{res.size[1]}"
        + (", sound kept" if info.has_audio else "")
        + (" (" + "; ".join(res.notes) + ")" if res.notes else "")
    )
    return str(res.path), status
