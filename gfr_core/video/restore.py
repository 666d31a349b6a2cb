"""Restore every face of a clip with the per-photo pipeline (:class:`~gfr_core.restore.FaceRestorer`),
frame after frame, streamed: a frame is restored once the ``3 * sigma`` frames after it are detected, so
memory holds that many frames whatever the clip's length."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..face import Detection
from ..io.image import open_temp, publish
from ..restore import RestoreResult
from .io import VideoInfo, VideoWriter, probe_video, read_frames, upright, video_notes
from .track import Tracker, smooth_detections

__all__ = ["VideoResult", "restore_video"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoResult:
    """What :func:`restore_video` wrote."""

    path: Path
    frames: int
    faces: int  # face crops restored, all frames together
    size: tuple[int, int]  # output (width, height) as shown (after the rotation metadata)
    notes: tuple[str, ...] = ()  # what the output could not keep as it was (bit depth, alpha, odd sides, ...)


def _even(n: int) -> int:
    return max(2, n - n % 2)


def restore_video(
    restorer,
    src: str | Path,
    dst: str | Path,
    *,
    upscale: float = 2,
    fidelity: float = 0.0,
    temporal: bool = True,
    sigma: float = 5.0,
    detect_every: int = 2,
    overwrite: bool = False,
    max_pixels: int | None = None,
    max_seconds: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_frame: Callable[[int, RestoreResult], None] | None = None,
    chroma: str = "444",
    w: float | None = None,
) -> VideoResult:
    """Restore ``src`` into ``dst`` (MP4, H.264, the input's sound and timestamps).

    Args:
        restorer: A :class:`~gfr_core.restore.FaceRestorer`.
        upscale: Output size / input size (the output's sides are rounded down to even numbers).
        fidelity: As for photos.
        temporal: Track faces and smooth their landmarks over time (``sigma`` frames); False restores each
            frame on its own detections (for comparison).
        detect_every: With ``temporal``, run the detector on every n-th frame only (tracks fill the rest).
        overwrite: Replace an existing ``dst``; otherwise it is an error, checked before any work.
        max_pixels / max_seconds: Refuse, before any work, a clip whose frames or length exceed these.
        progress: Called as ``progress(frames done, frames total)``.
        on_frame: Called as ``on_frame(index, result)`` with each frame's :class:`RestoreResult` (the faces
            and transforms used: what the steadiness benchmark measures).
        chroma: "444" (full colour resolution, the default: never below the bicubic upscale for colour
            subsampling) or "420" (for phones and QuickTime) (:class:`~gfr_core.video.io.VideoWriter`).
        w: CodeFormer's own fidelity weight, as for photos.
    """
    info: VideoInfo = probe_video(src)
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; refusing to overwrite it (choose another output folder)")
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise ValueError(
            f"{src}: {info.width}x{info.height} frames are over the {max_pixels / 1e6:g} MP per-frame limit; "
            "downscale the clip first"
        )
    if max_seconds is not None and info.duration > max_seconds:
        raise ValueError(f"{src}: {info.duration:.1f} s is over the {max_seconds:g} s limit; cut the clip first")
    shown_w, shown_h = info.display_size
    out_w, out_h = _even(round(shown_w * upscale)), _even(round(shown_h * upscale))  # upright
    detect_every = max(1, int(detect_every)) if temporal else 1
    lookahead = int(np.ceil(3 * sigma)) if temporal else 0
    tracker = Tracker()
    observed: dict[int, dict[int, Detection]] = {}
    pending: deque[tuple[int, np.ndarray, int | None, int]] = deque()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = open_temp(dst)
    os.close(fd)
    stored_w, stored_h = (out_h, out_w) if info.rotation % 180 else (out_w, out_h)
    try:
        writer = VideoWriter(tmp, width=stored_w, height=stored_h, info=info, source=src, chroma=chroma)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    notes = (*video_notes(info, upscale), *writer.notes)
    for note in notes:
        log.info("%s: %s", src, note)
    done = faces = 0

    def emit(index: int, rgb: np.ndarray, pts: int | None, duration: int) -> None:
        nonlocal done, faces
        window = {f: d for f, d in observed.items() if abs(f - index) <= max(lookahead, 1) + detect_every}
        dets = smooth_detections(
            window, index, sigma=sigma if temporal else 0.0, max_gap=max(10, 2 * detect_every), hold=detect_every
        )
        extra = {} if w is None else {"w": w}  # CodeFormer's weight, only when asked: any restorer-like callable works
        res = restorer(rgb, upscale=upscale, fidelity=fidelity, detections=dets, **extra)
        image = res.image[:out_h, :out_w]
        if image.shape[:2] != (out_h, out_w):  # rounding of the upscale: pad the last row / column
            image = np.pad(image, ((0, out_h - image.shape[0]), (0, out_w - image.shape[1]), (0, 0)), mode="edge")
        writer.write(upright(image, info.rotation, inverse=True), pts, duration)
        if on_frame is not None:
            on_frame(index, res)
        faces += len(res.faces)
        done += 1
        if progress is not None:
            progress(done, info.frames)
        for f in [f for f in observed if f < index - lookahead - detect_every]:
            del observed[f]

    try:
        for index, (stored, pts, duration) in enumerate(read_frames(src)):
            rgb = upright(stored, info.rotation)
            if index % detect_every == 0:
                found = restorer.detect(rgb)
                observed[index] = dict(tracker.assign(index, found))
            pending.append((index, rgb, pts, duration))
            while pending and pending[0][0] <= index - lookahead:
                emit(*pending.popleft())
        while pending:
            emit(*pending.popleft())
        if done == 0:
            raise ValueError(f"{src}: the clip has no frames")
        writer.close()
        publish(tmp, dst, overwrite=overwrite)  # never over a file another run wrote meanwhile
    except BaseException:  # Ctrl-C included: nothing half-written is left where the output belongs
        writer.abort()
        Path(tmp).unlink(missing_ok=True)
        raise
    return VideoResult(dst, done, faces, (out_w, out_h), notes)
