"""Clips made from a still photo moved along a known smooth path (pan, zoom, small rotation), each frame
degraded on its own: ground truth for the steadiness benchmark and the tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from .io import _av, upright

__all__ = ["camera_path", "make_clip"]


def camera_path(n: int, *, pan: float = 0.08, zoom: float = 0.1, angle: float = 4.0) -> np.ndarray:
    """(n,2,3) affine maps (photo -> frame, before the frame's resize) of a slow smooth camera move:
    ``pan`` of the frame width, ``zoom`` relative, ``angle`` degrees, each along a half sine."""
    t = np.sin(np.linspace(0, np.pi / 2, n))
    out = np.empty((n, 2, 3))
    for i, s in enumerate(t):
        out[i] = cv2.getRotationMatrix2D((0.0, 0.0), angle * s, 1.0 + zoom * s)
        out[i, 0, 2] += pan * s
    return out


def make_clip(
    photo: np.ndarray,
    path: str | Path,
    *,
    frames: int = 24,
    fps: int = 12,
    size: tuple[int, int] = (320, 240),
    audio: bool = True,
    scale: int = 2,
    quality: int = 60,
    noise: float = 3.0,
    seed: int = 0,
    rotation: int = 0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Write a clip of ``photo`` moving along :func:`camera_path`: each sharp frame (``size`` x ``scale``)
    is area-downscaled ``scale`` times, noised and JPEG-compressed on its own. Returns (the (n,2,3) maps
    from the photo to the sharp frames, the sharp frames) for scoring."""
    av = _av()
    rng = np.random.default_rng(seed)
    w, h = size
    sw, sh = w * scale, h * scale
    base = np.array([[sw / photo.shape[1] * 1.25, 0, -0.125 * sw], [0, sw / photo.shape[1] * 1.25, -0.1 * sh]])
    maps, sharp = [], []
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = (h, w, "yuv420p") if rotation % 180 else (w, h, "yuv420p")
        if rotation:
            vs.set_display_rotation(rotation)
        vs.options = {"crf": "12", "preset": "veryfast"}
        if audio:
            aus = out.add_stream("aac", rate=44100)
            aus.layout = "mono"
        centre = np.array([[1, 0, sw / 2], [0, 1, sh / 2], [0, 0, 1]])
        back = np.array([[1, 0, -sw / 2], [0, 1, -sh / 2], [0, 0, 1]])
        for m in camera_path(frames):
            move = np.vstack([m, [0, 0, 1]])
            move[0, 2] *= sw  # the pan is in frame widths
            a = (centre @ move @ back @ np.vstack([base, [0, 0, 1]]))[:2]
            frame = cv2.warpAffine(photo, a, (sw, sh), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
            maps.append(a)
            sharp.append(frame)
            lq = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
            lq = np.clip(lq + rng.normal(0, noise, lq.shape), 0, 255).astype(np.uint8)
            ok, enc = cv2.imencode(".jpg", cv2.cvtColor(lq, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
            lq = cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            stored = np.ascontiguousarray(upright(lq, rotation, inverse=True))
            for packet in vs.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if audio:
            samples = int(44100 * frames / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start : start + 1024][None]
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 44100, start, Fraction(1, 44100)
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return np.stack(maps), sharp
