"""Reliability, round three (issue #41): the FIFO hang, the training CLI's tracebacks and silent wrongs, and
the restore CLI's misleading lines. Each test fails on the code before these fixes (a hang, a traceback, a
wrong or missing line, or a wrong file)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gfr_core.tools.cli import main
from helpers import face_at, smooth_photo, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _gfr(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """``gfr`` in its own process (a hang fails the test by its timeout instead of blocking the suite)."""
    full = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), **env)
    cmd = [sys.executable, "-m", "gfr_core", *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=timeout)


def _one_line(res: subprocess.CompletedProcess, *needles: str) -> None:
    err = res.stderr.strip()
    assert res.returncode == 2 and "Traceback" not in err, err[-2000:]
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def faces(tmp_path) -> Path:
    d = tmp_path / "faces"
    d.mkdir()
    for i in range(4):
        Image.fromarray(smooth_photo(48, 48, seed=i)).save(d / f"f{i}.png")
    return d


# 1. The hang ----------------------------------------------------------------------------------------------


def test_a_fifo_given_as_a_photo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    res = _gfr("restore", str(fifo), "-o", str(tmp_path / "out"), timeout=60)  # the old code blocked in open()
    assert "x.jpg: not a regular file (a FIFO)" in res.stderr and res.returncode == 2


def test_a_fifo_is_never_opened_by_the_readers(tmp_path):
    from gfr_core.data.datasets import iter_images
    from gfr_core.io.image import ImageInputError, is_gfr_output, peek_image, read_image
    from gfr_core.video import VideoInputError, probe_video

    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    assert peek_image(fifo) is None and is_gfr_output(fifo) is False  # each used to block in open()
    with pytest.raises(ImageInputError, match="a FIFO"):
        read_image(fifo)
    with pytest.raises(VideoInputError, match=r"clip\.mp4: not a regular file \(a FIFO\); give a video clip"):
        probe_video(fifo)
    with pytest.raises(FileNotFoundError, match="a FIFO"):
        next(iter_images(fifo))
    folder = tmp_path / "data"
    folder.mkdir()
    os.mkfifo(folder / "a.png")  # inside training data: skipped, never opened
    Image.fromarray(smooth_photo(48, 48)).save(folder / "b.png")
    assert [name for name, _ in iter_images(folder)] == ["b.png"]


# 2-8, 15-17, 25, 26. The training CLI ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--batch", "0", "argument --batch: must be between 1 and 65536, got 0"),
        ("--batch", "-3", "argument --batch: must be between 1 and 65536, got -3"),
        ("--ckpt-every", "0", "argument --ckpt-every: must be >= 1, got 0"),
        ("--limit", "0", "argument --limit: must be >= 1, got 0"),
        ("--seed", "-1", "argument --seed: must be >= 0, got -1"),
        ("--steps", "-5", "argument --steps: must be >= 0, got -5"),
        ("--minutes", "-1", "argument --minutes: must be between 0.001 and 1e+06, got -1"),
        ("--zoom", "-1", "argument --zoom: must be between 0.5 and 3, got -1"),
        ("--zoom", "100", "argument --zoom: must be between 0.5 and 3, got 100"),
        ("--lr", "nan", "argument --lr: must be between 1e-08 and 1, got nan"),
        ("--batch", "two", "argument --batch: expected a whole number, got 'two'"),
    ],
)
def test_numeric_training_flags_are_checked_at_parse_time(tmp_path, capsys, flag, value, says):
    with pytest.raises(SystemExit) as stop:
        main(["train", "prior", "--data", str(tmp_path), "--out", str(tmp_path / "run"), flag, value])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "run").exists()  # nothing saved: the old code wrote a 0-step checkpoint for --steps -5


def test_the_config_refuses_the_same_values_in_python(tmp_path):
    from gfr_core.training import PriorConfig, RestorerConfig

    with pytest.raises(ValueError, match="--zoom must be between 0.5 and 3"):
        PriorConfig(data=str(tmp_path), out=str(tmp_path / "r"), zoom=-1)
    with pytest.raises(ValueError, match="--batch must be between 1 and 65536, got 0"):
        RestorerConfig(data=str(tmp_path), out=str(tmp_path / "r"), batch=0)


def test_training_on_an_empty_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _gfr("train", "prior", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "run"))
    _one_line(res, "no *-train.tar files and no images")
    (tmp_path / "junk").mkdir()
    for i in range(3):
        (tmp_path / "junk" / f"n{i}.jpg").write_bytes(b"not an image at all" * (i + 1))
    res = _gfr("train", "prior", "--data", str(tmp_path / "junk"), "--out", str(tmp_path / "run"), "--prealigned", "1")
    err = res.stderr.strip()
    assert res.returncode == 2 and "Traceback" not in err, err
    assert "skipped 3 file(s) that are not readable images (first: n0.jpg (not an image PIL can read))" in err
    assert err.splitlines()[-1].startswith("gfr: error: --data") and "no face found" in err


def test_unreadable_and_truncated_training_files_are_skipped_with_a_count(faces, caplog):
    from gfr_core.data.datasets import iter_images

    (faces / "notes.png").write_text("a text file named .png")
    full = (faces / "f0.png").read_bytes()
    (faces / "cut.png").write_bytes(full[: len(full) // 2])  # a truncated image
    with caplog.at_level(logging.WARNING):
        names = [name for name, _ in iter_images(faces)]
    assert names == ["f0.png", "f1.png", "f2.png", "f3.png"]
    assert "skipped 2 file(s) that are not readable images (first: cut.png (" in caplog.text


def test_the_no_prior_ablation_trains_from_the_cli(faces, tmp_path, capsys):
    """#41.2: `--use-prior false` without --prior raised KeyError 'out_size'."""
    out = tmp_path / "np"
    args = ["train", "restorer", "--data", str(faces), "--out", str(out), "--use-prior", "false"]
    args += ["--prealigned", "true", "--batch", "2", "--steps", "1", "--device", "cpu"]
    assert main(args) == 0
    from gfr_core import get_card, load_model

    trained = load_model(out / "restorer.safetensors")
    assert trained.config.out_size == get_card("embedded-prior").config["size"]  # the bundled prior's layout


def test_a_restorer_without_a_prior_names_the_flags(faces, tmp_path, capsys):
    args = ["train", "restorer", "--data", str(faces), "--out", str(tmp_path / "r"), "--prealigned", "true"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "needs --prior PRIOR" in err and "--use-prior false" in err and "use_prior=False" not in err


def test_a_corrupt_training_cache_is_named_and_rebuilt(tmp_path, monkeypatch, caplog):
    from gfr_core.data import aligned_faces

    monkeypatch.setenv("GFR_CACHE", str(tmp_path / "cache"))
    photos = ROOT / "tests" / "fixtures" / "photos-pd"
    first, names = aligned_faces([photos], size=32, progress=False)
    (cached,) = (tmp_path / "cache").glob("aligned-*.npy")
    cached.write_bytes(b"\x93NUMPY garbage")
    with caplog.at_level(logging.WARNING):
        again, names2 = aligned_faces([photos], size=32, progress=False)
    assert f"{cached}: the cached aligned faces are damaged" in caplog.text and "rebuilding them" in caplog.text
    assert np.array_equal(first, again) and names == names2
    assert np.array_equal(np.load(cached), first)  # rebuilt on disk too


# 9, 13, 14, 21, 29, 30: the other commands ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["restore", "x.jpg", "--threads", "-1"], "argument --threads: must be between 0 and 1024, got -1"),
        (["bench", "--batch", "0"], "argument --batch: must be between 1 and 256, got 0"),
        (["eval", "--limit", "0"], "argument --limit: must be >= 1, got 0"),
    ],
)
def test_counts_are_checked_at_parse_time(capsys, args, says):
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and says in err, err


def test_a_bad_pixel_limit_is_said_once_before_any_file(tmp_path):
    for i in range(3):
        Image.fromarray(smooth_photo(40, 40, seed=i)).save(tmp_path / f"p{i}.png")
    res = _gfr("restore", str(tmp_path), "-o", str(tmp_path / "out"), GFR_MAX_PIXELS="abc")
    assert res.returncode == 2 and res.stderr.count("GFR_MAX_PIXELS must be a positive whole number") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_clip_over_the_frame_limit_is_refused_from_its_header_by_name(tmp_path):
    pytest.importorskip("av")
    from gfr_core.video.synth import make_clip

    clip = tmp_path / "wide.mkv"
    make_clip(smooth_photo(240, 320), clip, frames=2, audio=False)
    res = _gfr("restore", str(clip), "-o", str(tmp_path / "out"), "--model", "embedded", GFR_MAX_PIXELS="50000")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"{clip}: its frames are 320x240 = 0.0768 MP, over the 0.05 MP limit of a frame" in res.stderr
    assert "image: " not in res.stderr  # the old line named no clip


def test_the_ray_engine_refuses_an_unrelated_existing_output_as_the_local_one_does(tmp_path):
    model = tiny_checkpoint(tmp_path / "tiny.safetensors")
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        Image.fromarray(smooth_photo(40, 40, seed=i)).save(src / f"p{i}.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p0.png").write_bytes(b"someone else's file")
    for engine in ("local", "ray"):
        res = _gfr("restore", str(src), "-o", str(out), "--model", str(model), "--engine", engine)
        _one_line(res, "1 of 2 output(s) already exist", "--skip-existing")
    assert (out / "p0.png").read_bytes() == b"someone else's file" and not (out / "p1.png").exists()


def test_export_onnx_never_overwrites_without_asking(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    target = tmp_path / "mine.onnx"
    target.write_bytes(b"my own graph")
    assert main(["export-onnx", "embedded", "-o", str(target)]) == 2
    assert "mine.onnx exists; add --overwrite to replace it" in capsys.readouterr().err
    assert target.read_bytes() == b"my own graph"
    assert main(["export-onnx", "embedded", "-o", str(target), "--overwrite"]) == 0
    assert target.read_bytes()[:4] != b"my o"


# 19, 20: messages about the user's model file ---------------------------------------------------------------


def test_nan_weights_in_a_users_file_name_that_file(tmp_path, capsys):
    from gfr_core import load_model

    sd = load_model("embedded").state_dict()
    key = next(k for k, v in sd.items() if v.is_floating_point() and v.numel() > 1)
    sd[key] = sd[key].clone()
    sd[key].view(-1)[0] = float("nan")
    mine = tmp_path / "mine.pth"
    torch.save(sd, mine)
    photo = tmp_path / "p.png"
    Image.fromarray(smooth_photo(40, 40)).save(photo)
    assert main(["restore", str(photo), "-o", str(tmp_path / "out"), "--model", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine}: weight {key} holds NaN" in err and "embedded.safetensors" not in err


def test_a_file_of_no_known_layout_says_what_the_cli_offers(tmp_path, capsys):
    torch.save({"some.weight": torch.zeros(3)}, tmp_path / "wrongkeys.pth")
    photo = tmp_path / "p.png"
    Image.fromarray(smooth_photo(40, 40)).save(photo)
    assert main(["restore", str(photo), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "wrongkeys.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "wrongkeys.pth: the checkpoint matches none of the registered architectures (`gfr models` lists them)" in err
    assert "arch=<" not in err and len(err.splitlines()) <= 2  # the CLI has no arch option to pass


# 31-33: what a run says --------------------------------------------------------------------------------------


def test_every_face_gets_its_line_whatever_the_photo(tmp_path):
    from gfr_core import FaceRestorer

    r = FaceRestorer.from_pretrained("embedded")
    photo = smooth_photo(240, 400)
    gray = np.repeat(photo.mean(2, keepdims=True), 3, 2).astype(np.uint8)
    dets = [face_at(60, 80, 50), face_at(200, 120, 90), face_at(330, 90, 160), face_at(120, 190, 30)]
    for image, upscale in ((photo, 2), (photo, 1), (gray, 2)):
        res = r(image, upscale=upscale, detections=dets)
        lines = [m for m in res.messages if m.startswith("face ")]
        assert [m.split(" ")[1] for m in lines] == ["1", "2", "3", "4"], res.messages  # faces were skipped


def test_an_input_with_its_outputs_extension_keeps_its_name(tmp_path):
    pytest.importorskip("av")
    from gfr_core.video.synth import make_clip

    src = tmp_path / "in"
    src.mkdir()
    make_clip(smooth_photo(240, 320), src / "clip.mp4", frames=2, audio=False)
    make_clip(smooth_photo(240, 320, seed=1), src / "clip.mov", frames=2, audio=False)
    from gfr_core.tools.restore_cli import _plan, collect_inputs

    jobs = {j.src.name: j.dst.name for j in _plan(collect_inputs([str(src)]), tmp_path / "out", "auto")}
    assert jobs == {"clip.mp4": "clip.mp4", "clip.mov": "clip-mov.mp4"}  # the old plan gave clip.mov clip.mp4


def test_a_folder_with_clips_counts_files_and_shows_no_empty_frame_bar(tmp_path, capsys):
    pytest.importorskip("av")
    from gfr_core.video.synth import make_clip

    src = tmp_path / "in"
    src.mkdir()
    make_clip(smooth_photo(240, 320), src / "a.mp4", frames=3, audio=False)
    Image.fromarray(smooth_photo(40, 40)).save(src / "b.png")
    assert main(["restore", str(src), "-o", str(tmp_path / "out"), "--model", "embedded"]) == 0
    err = capsys.readouterr().err
    assert "file/s" in err and "img/s" not in err and " 0frame " not in err, err


# 11: a cached ONNX export that is not gfr's ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_cached_onnx_export_with_external_data_is_exported_again_never_loaded(tmp_path, monkeypatch, caplog):
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx.external_data_helper import set_external_data

    from gfr_core import FaceRestorer
    from gfr_core.hub import ModelUnavailableError
    from gfr_core.hub.checkpoint import sha256_file
    from gfr_core.hub.onnx import onnx_session

    monkeypatch.setenv("GFR_CACHE", str(tmp_path / "cache"))
    photo = smooth_photo(48, 48)
    ref = FaceRestorer.from_pretrained("embedded", backend="onnxruntime")(photo, upscale=1, aligned=True).image
    (path,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    graph = onnx.load(str(path))
    init = graph.graph.initializer[0]
    outside = tmp_path / "outside.bin"
    outside.write_bytes(init.raw_data or onnx.numpy_helper.to_array(init).tobytes())
    set_external_data(init, location=os.path.relpath(outside, path.parent))  # "../../outside.bin"
    init.ClearField("raw_data")
    init.ClearField("float_data")
    onnx.save(graph, str(path))
    path.with_name(path.name + ".sha256").write_text(sha256_file(path) + "\n")  # its record matches
    with pytest.raises(ModelUnavailableError, match="keeps its weights in other files, which gfr never loads"):
        onnx_session(path)
    atime = outside.stat().st_atime_ns
    with caplog.at_level(logging.WARNING):
        out = FaceRestorer.from_pretrained("embedded", backend="onnxruntime")(photo, upscale=1, aligned=True).image
    assert "is not gfr's (it refers to files beside it): exported again" in caplog.text
    assert np.array_equal(out, ref) and outside.stat().st_atime_ns == atime


# 24: subtitles ------------------------------------------------------------------------------------------------


def _clip_with_subtitles(path: Path, fmt: str, codec: str, cue: bytes) -> None:
    from fractions import Fraction

    import av

    from gfr_core.video.io import _ASS_HEADER

    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        subs = out.add_stream(codec)
        subs.time_base = Fraction(1, 1000)
        subs.codec_context.subtitle_header = _ASS_HEADER
        subs.metadata["language"] = "fra"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(smooth_photo(64, 96, seed=i), format="rgb24")
            frame.pts = i
            for p in video.encode(frame):
                out.mux(p)
            if i == 1:
                packet = av.Packet(cue)
                packet.stream, packet.pts, packet.dts, packet.duration = subs, 100, 100, 300
                packet.time_base = Fraction(1, 1000)
                out.mux(packet)
        for p in video.encode():
            out.mux(p)


@pytest.mark.parametrize(
    ("fmt", "codec", "cue", "note"),
    [
        ("mp4", "mov_text", b"\x00\x07bonjour", False),
        ("matroska", "subrip", b"<i>bonjour</i>", True),
    ],
)
def test_a_clips_subtitles_are_kept(tmp_path, fmt, codec, cue, note):
    av = pytest.importorskip("av")
    src = tmp_path / ("in.mp4" if fmt == "mp4" else "in.mkv")
    _clip_with_subtitles(src, fmt, codec, cue)
    res = _gfr("restore", str(src), "-o", str(tmp_path / "out"), "--model", "embedded")
    assert res.returncode == 0, res.stderr
    assert ("kept as MP4 text subtitles" in res.stderr) is note
    with av.open(str(tmp_path / "out" / "in.mp4")) as c:
        (track,) = c.streams.subtitles  # the old writer dropped it without a word
        assert track.codec_context.name == "mov_text" and track.metadata.get("language") == "fra"
        cues = [(p.pts * p.time_base, bytes(p)) for p in c.demux(track) if len(bytes(p)) > 2]  # not gap cues
    assert cues == [(pytest.approx(0.1), b"\x00\x07bonjour")]


# 38, 39: first use --------------------------------------------------------------------------------------------


def test_the_readme_says_how_to_change_the_port():
    readme = (ROOT / "README.md").read_text()
    run = readme[readme.index("## Run") : readme.index("## Video")]
    assert "GRADIO_SERVER_PORT=" in run and "python app.py" in run


def test_the_readme_picture_has_no_empty_strip():
    picture = np.asarray(Image.open(ROOT / "demo" / "examples" / "before-after.png").convert("RGB"), dtype=float)
    h = picture.shape[0] // 2
    for strip in (picture[:h], picture[h:]):  # a row of before | after | original; a blank strip does not vary
        columns = strip.std(axis=0).mean(-1)
        assert columns.min() > 2, columns.argmin()
