"""Reading and writing clips with PyAV (its wheels carry FFmpeg): frames in, H.264 out, sound copied.

Frames keep their timestamps (a variable frame rate stays variable); the audio packets are copied
unchanged. Errors are one line (:class:`VideoInputError`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "VideoInputError",
    "VideoWriter",
    "probe_video",
    "read_frames",
    "upright",
    "video_notes",
]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
"""File suffixes ``gfr restore`` treats as clips."""


class VideoInputError(ValueError):
    """The clip cannot be used; the message says why and what to do."""


def _reason(exc: Exception) -> str:
    """FFmpeg's reason, without its errno and file name."""
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def _av():
    try:
        import av
    except ImportError:
        raise VideoInputError("video needs PyAV: pip install -e '.[video]' (or pip install av==18.1.0)") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a clip holds, from its header."""

    width: int
    height: int
    frames: int  # as counted by the container (0 when it does not say)
    rate: Fraction  # average frame rate
    duration: float  # seconds
    time_base: Fraction
    has_audio: bool
    pix_fmt: str | None
    rotation: int = 0  # display rotation, degrees counter-clockwise (0, 90, 180, 270), from the display matrix
    bit_depth: int = 8  # bits per sample of the stored pixels
    alpha: bool = False  # the stored pixels carry an alpha channel

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after the rotation."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


def upright(rgb: np.ndarray, rotation: int, *, inverse: bool = False) -> np.ndarray:
    """A stored frame turned as the player shows it (``inverse``: an upright frame turned back to storage)."""
    k = (rotation // 90) % 4
    return np.rot90(rgb, -k if inverse else k) if k else rgb


def video_notes(info: VideoInfo, upscale: float) -> list[str]:
    """One line for each thing about ``info`` that the output cannot keep as it is."""
    notes = []
    if info.bit_depth > 8:
        notes.append(f"{info.bit_depth}-bit video: restored and written as 8-bit H.264")
    if info.alpha:
        notes.append("the clip's alpha channel is dropped: H.264 has none (the frames are kept opaque)")
    w, h = round(info.width * upscale), round(info.height * upscale)
    if w % 2 or h % 2:
        notes.append(f"{w}x{h} output rounded down to even sides ({w - w % 2}x{h - h % 2}), as H.264 requires")
    if info.rotation:
        notes.append(f"rotation metadata ({info.rotation} degrees) kept; faces are found on the upright frames")
    return notes


def probe_video(path: str | Path) -> VideoInfo:
    """The clip's :class:`VideoInfo`, or one clear :class:`VideoInputError`."""
    av = _av()
    from ..io.files import not_regular

    path = Path(path)
    why = not_regular(path)  # before FFmpeg opens it: a FIFO would block
    if why is not None:
        raise VideoInputError(f"{path}: {why.replace('give a file', 'give a video clip')}")
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                what = "only sound" if c.streams.audio else "no video stream"
                raise VideoInputError(f"{path}: the file has {what}; give a video clip")
            if c.format.name == "image2" or c.format.name.endswith("_pipe"):  # FFmpeg reads a photo as one frame
                raise VideoInputError(f"{path}: this is a still image, not a clip; restore it as a photo")
            vs = c.streams.video[0]
            rate = vs.average_rate or vs.guessed_rate
            if not rate or vs.codec_context.width <= 0:
                raise VideoInputError(f"{path}: the video stream has no frame size or rate; re-encode it")
            duration = float(vs.duration * vs.time_base) if vs.duration else (c.duration or 0) / 1e6
            _check_frame_size(path, vs.codec_context.width, vs.codec_context.height)  # from the header: never decoded
            first = next(iter(c.decode(vs)), None)  # decoding one frame proves there is one to restore
            if first is None:
                raise VideoInputError(f"{path}: the video stream has no frames; re-export the clip")
            fmt = av.VideoFormat(vs.codec_context.pix_fmt or first.format.name)
            return VideoInfo(
                width=vs.codec_context.width,
                height=vs.codec_context.height,
                frames=int(vs.frames or 0),
                rate=Fraction(rate),
                duration=duration,
                time_base=Fraction(vs.time_base),
                has_audio=bool(c.streams.audio),
                pix_fmt=vs.codec_context.pix_fmt,
                rotation=int(round((first.rotation or 0) / 90)) * 90 % 360,
                bit_depth=max(comp.bits for comp in fmt.components),
                alpha=any(comp.is_alpha for comp in fmt.components),
            )
    except VideoInputError:
        raise
    except Exception as exc:  # FFmpeg's errors for corrupt, truncated or foreign files
        raise VideoInputError(f"{path}: not a readable video ({_reason(exc)}); re-export it") from None


CHROMA = {"444": "yuv444p", "420": "yuv420p"}
"""Colour resolution of the written clip: full (the default), or halved for players that need it."""


def _check_frame_size(path: Path, width: int, height: int) -> None:
    """A clip whose frames are over the photo pixel limit (``GFR_MAX_PIXELS``) is refused by name, before a
    frame is decoded (a 16000x16000 frame alone takes seconds and gigabytes)."""
    from ..io.image import max_pixels

    limit = max_pixels()
    if width * height > limit:
        raise VideoInputError(
            f"{path}: its frames are {width}x{height} = {width * height / 1e6:.3g} MP, over the {limit / 1e6:.3g} MP "
            "limit of a frame; downscale the clip first (e.g. ffmpeg -vf scale=1920:-2) or raise GFR_MAX_PIXELS"
        )


def read_frames(path: str | Path) -> Iterator[tuple[np.ndarray, int, int]]:
    """(RGB uint8 (H,W,3), pts, duration (both in the stream's time base; 0: unknown)) for every frame,
    decoded one at a time. Timestamps are increasing: a frame without one, or repeating one, gets the
    previous one plus a frame."""
    av = _av()
    try:
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            vs.thread_type = "AUTO"
            step = 1 / float((vs.average_rate or vs.guessed_rate or 25) * vs.time_base)  # one frame, in ticks
            last = None
            for frame in c.decode(vs):
                pts = frame.pts
                if pts is None or (last is not None and pts <= last):  # no time, or out of order: the next tick
                    pts = 0 if last is None else last + max(1, round(step))
                last = pts
                yield frame.to_ndarray(format="rgb24"), pts, frame.duration or 0
    except Exception as exc:
        if isinstance(exc, GeneratorExit):
            raise
        raise VideoInputError(f"{path}: decoding failed ({_reason(exc)}); the file is damaged") from None


_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\nFormat: Name, Fontname, "
    b"Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, "
    b"ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, "
    b"Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
"""The style header FFmpeg's mov_text muxing needs (the text of MP4's subtitle tracks carries no style)."""

_TEXT_SUBTITLES = ("subrip", "srt", "ass", "ssa", "webvtt", "text")
"""Subtitle codecs whose cues are text: re-written as MP4's mov_text (their styling tags dropped)."""


def _cue_text(codec: str, data: bytes) -> bytes:
    """The plain text of one subtitle cue: ASS's last field without its {\\override} tags, SRT and WebVTT
    without their <i>-style tags."""
    import re

    text = data.decode("utf-8", errors="replace")
    if codec in ("ass", "ssa"):
        text = text.split(",", 8)[-1]
        text = re.sub(r"\{[^}]*\}", "", text).replace("\\N", "\n").replace("\\n", "\n")
    text = re.sub(r"</?[a-zA-Z][^>]*>", "", text).strip()
    return text.encode()


class VideoWriter:
    """H.264 at the input's timestamps, the input's sound and subtitle tracks kept; ``close()`` finishes the
    file. ``chroma`` "444" keeps the colour at full resolution (yuv444p: a restored face loses nothing to
    colour subsampling; desktop players and Chromium play it), "420" halves it (yuv420p: every player,
    phones and QuickTime included; about 0.9 dB of face PSNR lost on colourful faces)."""

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        info: VideoInfo,
        source: str | Path,
        crf: int = 18,
        chroma: str = "444",
    ):
        if chroma not in CHROMA:
            raise ValueError(f"chroma must be one of {', '.join(CHROMA)}, got {chroma!r}")
        av = _av()
        self.path = Path(path)
        self.source = Path(source)
        self.container = av.open(str(self.path), "w", format="mp4")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        if codec != "libx264":
            log.warning("this FFmpeg has no H.264 encoder: writing MPEG-4 Part 2 instead")
        self.stream = self.container.add_stream(codec, rate=info.rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = CHROMA[chroma] if codec == "libx264" else "yuv420p"  # MPEG-4 Part 2: 4:2:0 only
        # the encoder counts in the input's time base too: frame times are copied, never rounded to 1 / rate
        # (a variable frame rate would otherwise collide on equal timestamps)
        self.stream.time_base = self.stream.codec_context.time_base = info.time_base
        if info.rotation:
            self.stream.set_display_rotation(info.rotation)
        if codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.notes: list[str] = []
        # input stream index -> (output, how): None copies, a resampler re-encodes sound, a codec name re-writes
        # that subtitle codec's cues as mov_text
        self.tracks: dict[int, tuple[object, object | None]] = {}
        self._in = self._packets = self._pending = None
        self._in = av.open(str(self.source))
        for track in self._in.streams.audio:  # every sound track, copied as it is where MP4 can hold it
            try:
                self.tracks[track.index] = (self.container.add_stream_from_template(track), None)
            except ValueError:  # a codec MP4 cannot hold (ADPCM from old cameras, ...): re-encoded as AAC
                self.tracks[track.index] = self._add_aac(track)
        for track in self._in.streams.subtitles:
            self._add_subtitles(track)
        side = [s for s in (*self._in.streams.audio, *self._in.streams.subtitles) if s.index in self.tracks]
        if side:
            self._packets = iter(self._in.demux(*side))
        else:
            self._in.close()
            self._in = None
        self.time_base = info.time_base
        self._av = av

    def _add_aac(self, track) -> tuple[object, object]:
        ctx = track.codec_context
        rate = ctx.sample_rate if 8000 <= (ctx.sample_rate or 0) <= 96000 else 48000
        layout = "mono" if ctx.channels == 1 else "stereo"
        out = self.container.add_stream("aac", rate=rate)
        out.layout = layout
        self.notes.append(f"the {ctx.name} sound is re-encoded as AAC: MP4 cannot hold {ctx.name}")
        return out, _av().AudioResampler(format="fltp", layout=layout, rate=rate)

    def _add_subtitles(self, track) -> None:
        """Keep a subtitle track: mov_text copied, text cues re-written as mov_text, anything else (bitmap
        subtitles: DVD, Blu-ray PGS) left out with a note."""
        codec = track.codec_context.name
        lang = track.metadata.get("language")
        what = f"the {codec} subtitle track" + (f" ({lang})" if lang else "")
        if codec not in ("mov_text", *_TEXT_SUBTITLES):
            self.notes.append(f"{what} is not kept: MP4 holds text subtitles only")
            return
        out = self.container.add_stream("mov_text")
        out.time_base = track.time_base
        out.codec_context.subtitle_header = _ASS_HEADER
        if lang:
            out.metadata["language"] = lang
        self.tracks[track.index] = (out, codec)
        if codec != "mov_text":
            self.notes.append(f"{what} is kept as MP4 text subtitles (its styling dropped)")

    def _mux_subtitle(self, packet, out, codec: str) -> None:
        data = bytes(packet)
        if not data or packet.pts is None:
            return
        if codec != "mov_text":
            text = _cue_text(codec, data)
            data = len(text).to_bytes(2, "big") + text
        cue = self._av.Packet(data)
        cue.stream = out
        cue.pts, cue.dts, cue.duration = (
            packet.pts,
            packet.dts if packet.dts is not None else packet.pts,
            packet.duration,
        )
        cue.time_base = packet.time_base
        self.container.mux(cue)

    def _mux_sound(self, until: float | None) -> None:
        """Copy (or re-encode) the sound and subtitles up to ``until`` seconds (None: all of it), interleaved
        with the video."""
        while self._packets is not None:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    self._packets = None
                    break
            packet = self._pending
            if until is not None and packet.dts is not None and float(packet.dts * packet.time_base) > until:
                return
            self._pending = None
            out, resampler = self.tracks[packet.stream.index]
            if isinstance(resampler, str):  # a subtitle track
                self._mux_subtitle(packet, out, resampler)
                continue
            if resampler is None:
                if packet.dts is not None:  # the demuxer's last, empty packet of each stream is not data
                    packet.stream = out
                    self.container.mux(packet)
                continue
            for frame in packet.decode():
                for chunk in resampler.resample(frame):
                    self.container.mux(out.encode(chunk))

    def write(self, rgb: np.ndarray, pts: int | None, duration: int = 0) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, self.time_base
        if duration:
            frame.duration = duration  # the last frame's too: the clip keeps its length
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        if pts is not None:
            self._mux_sound(float(pts * self.time_base) + 1.0)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self._mux_sound(None)
        for out, resampler in self.tracks.values():
            if resampler is not None and not isinstance(resampler, str):  # what the resampler and encoder hold
                for chunk in resampler.resample(None):
                    self.container.mux(out.encode(chunk))
                self.container.mux(out.encode(None))
        if self._in is not None:
            self._in.close()
        self.container.close()

    def abort(self) -> None:
        """Stop without finishing (the caller removes the file)."""
        for c in (self.container, self._in):
            try:
                if c is not None:
                    c.close()
            except Exception:  # a half-written container may refuse to close cleanly; it is deleted anyway
                pass
