"""Video (issue #35): ``gfr restore clip.mp4`` keeps frame count, rate, duration and sound; faces are tracked
and their landmarks smoothed over time; bad clips are one line; an interrupted run leaves nothing."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from gfr_core import FaceRestorer, read_image
from gfr_core.face import Detection
from gfr_core.tools.cli import main
from gfr_core.video import VideoInputError, probe_video, restore_video, smooth_detections
from gfr_core.video.synth import make_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    make_clip(read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg").rgb, path, frames=24, fps=12)
    return path


def _count(path: Path, kind: str) -> int:
    with av.open(str(path)) as c:
        if kind == "video":
            return sum(1 for _ in c.decode(video=0))
        return sum(1 for p in c.demux(audio=0) if p.dts is not None)


@pytest.mark.parametrize("temporal", ["on", "off"])
def test_a_clip_keeps_its_frames_rate_duration_and_sound(clip, tmp_path, temporal, capsys):
    out = tmp_path / "out"
    assert main(["restore", str(clip), "-o", str(out), "--model", "embedded", "--temporal", temporal, "-q"]) == 0
    src, dst = probe_video(clip), probe_video(out / "clip.mp4")
    assert (dst.width, dst.height) == (2 * src.width, 2 * src.height)
    assert dst.rate == src.rate and abs(dst.duration - src.duration) < 0.05
    assert _count(out / "clip.mp4", "video") == _count(clip, "video") == 24
    assert dst.has_audio and _count(out / "clip.mp4", "audio") == _count(clip, "audio") > 0
    with av.open(str(clip)) as a, av.open(str(out / "clip.mp4")) as b:  # the same timestamps, frame by frame
        pa = [f.time for f in a.decode(video=0)]
        pb = [f.time for f in b.decode(video=0)]
    assert np.allclose(pa, pb, atol=1e-3)
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]  # no temporary file left
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "clip.mp4").stat().st_mode & 0o777 == 0o666 & ~mask  # readable as a photo gfr writes is


def test_smoothing_cuts_landmark_jitter_and_fills_a_miss():
    rng = np.random.default_rng(0)
    truth = np.array([[100.0 + 2 * f, 80.0 + f] for f in range(40)])  # a face moving steadily
    lm0 = np.array([[-20, -10], [20, -10], [0, 5], [-15, 20], [15, 20]], np.float64)
    observed = {}
    for f in range(40):
        if f == 20:
            continue  # the detector missed this frame
        noisy = truth[f] + lm0 + rng.normal(0, 2.0, (5, 2))
        observed[f] = {0: Detection(box=np.r_[noisy.min(0) - 10, noisy.max(0) + 10], landmarks=noisy, score=1.0)}
    raw = [np.abs(observed[f][0].landmarks - truth[f] - lm0).mean() for f in range(8, 32) if f != 20]
    smooth = []
    for f in range(8, 32):
        (d,) = smooth_detections(observed, f, sigma=5.0)
        smooth.append(np.abs(d.landmarks - truth[f] - lm0).mean())
    assert np.mean(smooth) < np.mean(raw) / 3, (np.mean(raw), np.mean(smooth))
    assert smooth_detections(observed, 20, sigma=0.0) == []  # frame by frame: the miss stays a miss


def _add_silence(container) -> None:
    """An AAC stream of 1024 silent samples in ``container`` (open for writing)."""
    s = container.add_stream("aac", rate=44100)
    s.layout = "mono"
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    frame.sample_rate = 44100
    for p in [*s.encode(frame), *s.encode()]:
        container.mux(p)


def test_bad_clips_are_one_line_and_write_nothing(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with av.open(str(tmp_path / "in" / "sound.mp4"), "w", format="mp4") as c:  # audio only
        _add_silence(c)
    rc = main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "embedded", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and "2 of 2 file(s) failed" in err
    assert "noise.mp4: not a readable video" in err and "sound.mp4: the file has only sound; give a video clip" in err
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(VideoInputError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")


def test_an_interrupted_clip_leaves_nothing_where_the_output_belongs(clip, tmp_path):
    r = FaceRestorer.from_pretrained("embedded")

    def stop(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore_video(r, clip, tmp_path / "clip.mp4", progress=stop)
    assert list(tmp_path.iterdir()) == []
    res = restore_video(r, clip, tmp_path / "clip.mp4", upscale=1)
    assert res.frames == 24 and res.size == (320, 240)
    with pytest.raises(FileExistsError):  # checked before any work
        restore_video(r, clip, tmp_path / "clip.mp4")


def test_a_clip_killed_earlier_leaves_nothing_after_the_next_run(clip, tmp_path):
    """What a killed run left (a temporary clip of a process that is gone) is removed when the folder is
    written to again."""
    import subprocess
    import sys

    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / f".gfr-tmp-{gone.pid}-abc12_yz.part.mp4").write_bytes(b"half")
    assert main(["restore", str(clip), "-o", str(out), "--model", "embedded", "--upscale", "1", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotation_metadata_is_kept_and_faces_are_found_upright(tmp_path, rotation):
    photo = read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "biden.jpg").rgb
    src = tmp_path / "phone.mp4"
    make_clip(photo, src, frames=6, size=(160, 120), rotation=rotation)  # stored sideways, shown upright
    info = probe_video(src)
    assert (info.width, info.height, info.rotation) == (120, 160, rotation)
    res = restore_video(FaceRestorer.from_pretrained("embedded"), src, tmp_path / "out.mp4", upscale=2)
    assert res.faces == 6 and res.size == (320, 240) and any("rotation" in n for n in res.notes)
    out = probe_video(tmp_path / "out.mp4")
    assert (out.width, out.height, out.rotation) == (240, 320, rotation)  # stored as the input was, with its tag
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        fa = next(a.decode(video=0)).to_ndarray(format="rgb24")
        fb = next(b.decode(video=0)).to_ndarray(format="rgb24")
    small = cv2.resize(fb, (fa.shape[1], fa.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - fa).mean() < 6  # the same picture, not turned


def _write_clip(path: Path, codec: str, pix_fmt: str, size: tuple[int, int], frames: int = 4) -> None:
    w, h = size
    face = cv2.resize(read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg").rgb, (w, h))
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=12)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        for _ in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(face, format="rgb24").reformat(format=pix_fmt)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "size", "upscale", "out_size", "note"),
    [
        (
            "deep.mp4",
            "libx264",
            "yuv420p10le",
            (160, 120),
            "2",
            (320, 240),
            "10-bit video: restored and written as 8-bit",
        ),
        ("alpha.mkv", "ffv1", "yuva420p", (160, 120), "2", (320, 240), "alpha channel is dropped"),
        ("odd.mkv", "ffv1", "yuv444p", (161, 121), "1", (160, 120), "161x121 output rounded down to even sides"),
    ],
)
def test_deep_alpha_and_odd_sized_clips_are_restored_with_a_note(
    tmp_path, capsys, name, codec, pix_fmt, size, upscale, out_size, note
):
    src = tmp_path / name
    _write_clip(src, codec, pix_fmt, size)
    out = tmp_path / "out"
    rc = main(["restore", str(src), "-o", str(out), "--model", "embedded", "--upscale", upscale])
    err = capsys.readouterr().err
    assert rc == 0 and note in err, err
    (written,) = out.iterdir()
    assert written.suffix == ".mp4"  # an MP4 whatever the input's container: H.264 in MP4 plays everywhere
    info = probe_video(written)
    assert (info.width, info.height) == out_size and info.pix_fmt == "yuv444p" and _count(written, "video") == 4


def test_zero_frames_truncated_and_over_limit_clips_are_refused_before_work(clip, tmp_path):
    empty = tmp_path / "empty.mkv"  # a video stream with no frames, beside some sound
    with av.open(str(empty), "w", format="matroska") as c:
        v = c.add_stream("ffv1", rate=12)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        _add_silence(c)
    with pytest.raises(VideoInputError, match="no frames"):
        probe_video(empty)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    r = FaceRestorer.from_pretrained("embedded")
    out = tmp_path / "out"
    with pytest.raises(VideoInputError, match="cut.mp4: "):
        restore_video(r, cut, out / "cut.mp4")
    calls = []
    with pytest.raises(ValueError, match=r"320x240 frames are over the 0.05 MP per-frame limit"):
        restore_video(r, clip, out / "a.mp4", max_pixels=50_000, progress=lambda *a: calls.append(a))
    with pytest.raises(ValueError, match=r"2.0 s is over the 1 s limit"):
        restore_video(r, clip, out / "b.mp4", max_seconds=1, progress=lambda *a: calls.append(a))
    assert calls == [] and (not out.exists() or list(out.iterdir()) == [])


def test_sound_mp4_cannot_hold_is_re_encoded_as_aac(tmp_path, capsys):
    """An old camera's AVI: Motion JPEG with ADPCM sound, which MP4 cannot hold."""
    src = tmp_path / "camera.avi"
    face = cv2.resize(read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg").rgb, (160, 120))
    with av.open(str(src), "w", format="avi") as c:
        v = c.add_stream("mjpeg", rate=10)
        v.width, v.height, v.pix_fmt = 160, 120, "yuvj420p"
        a = c.add_stream("adpcm_ima_wav", rate=8000)
        a.layout = "mono"
        for _ in range(10):
            for p in v.encode(av.VideoFrame.from_ndarray(face, format="rgb24").reformat(format="yuvj420p")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        n = a.codec_context.frame_size
        tone = (8000 * np.sin(np.arange(8000) / 5)).astype(np.int16)
        for start in range(0, 8000 - n + 1, n):  # one second of sound
            f = av.AudioFrame.from_ndarray(tone[None, start : start + n], format="s16p", layout="mono")
            f.sample_rate, f.pts = 8000, start
            for p in a.encode(f):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    out = tmp_path / "out"
    assert main(["restore", str(src), "-o", str(out), "--model", "embedded", "--upscale", "1"]) == 0
    assert "the adpcm_ima_wav sound is re-encoded as AAC" in capsys.readouterr().err
    with av.open(str(out / "camera.mp4")) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        sound = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    with av.open(str(src)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert abs(len(sound) - samples) < 1024 and np.abs(sound).max() > 0.05  # all of it, and not silence
    assert _count(out / "camera.mp4", "video") == 10


def test_a_variable_frame_rate_keeps_every_timestamp(tmp_path):
    """Frames 100 ms and 33 ms apart in turn (a phone's variable rate): each keeps its time exactly."""
    src = tmp_path / "vfr.mp4"
    face = cv2.resize(read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg").rgb, (160, 120))
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 1000)
        for i in range(16):
            f = av.VideoFrame.from_ndarray(face, format="rgb24")
            f.pts, f.time_base = (i // 2) * 133 + (i % 2) * 100, Fraction(1, 1000)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    restore_video(FaceRestorer.from_pretrained("embedded"), src, tmp_path / "out.mp4", upscale=1)
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        ta = [f.time for f in a.decode(video=0)]
        tb = [f.time for f in b.decode(video=0)]
    assert len(set(np.round(np.diff(ta), 3))) == 2  # the input really is variable
    assert np.allclose(ta, tb, atol=1e-4)


def test_every_sound_track_is_copied_and_interleaved_with_the_frames(tmp_path):
    """A clip with two sound tracks (two languages): both are copied, packet for packet, and the sound is
    written along the frames, not after them (players and browsers stream it)."""
    src = tmp_path / "two.mkv"
    face = cv2.resize(read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg").rgb, (160, 120))
    with av.open(str(src), "w", format="matroska") as c:
        v = c.add_stream("libx264", rate=12)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        tracks = [c.add_stream("aac", rate=48000) for _ in range(2)]
        for a in tracks:
            a.layout = "mono"
        for i in range(24):
            for p in v.encode(av.VideoFrame.from_ndarray(np.roll(face, i, 1), format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        for k, a in enumerate(tracks):
            for start in range(0, 2 * 48000, 1024):
                tone = (0.1 * np.sin((k + 1) * np.arange(start, start + 1024) / 20)).astype(np.float32)
                f = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
                f.sample_rate, f.pts, f.time_base = 48000, start, Fraction(1, 48000)
                for p in a.encode(f):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    restore_video(FaceRestorer.from_pretrained("embedded"), src, tmp_path / "out.mp4", upscale=1)

    def packets(path: Path) -> list[tuple[str, int]]:
        with av.open(str(path)) as c:
            return [(p.stream.type, p.stream.index) for p in c.demux() if p.dts is not None]

    got, want = packets(tmp_path / "out.mp4"), packets(src)
    audio_in = sorted({i for t, i in want if t == "audio"})
    audio_out = sorted({i for t, i in got if t == "audio"})
    assert len(audio_out) == 2
    assert [got.count(("audio", i)) for i in audio_out] == [want.count(("audio", i)) for i in audio_in]
    last_video = max(n for n, (t, _) in enumerate(got) if t == "video")
    assert sum(t == "audio" for t, _ in got[:last_video]) > len(got) // 4  # sound along the frames
