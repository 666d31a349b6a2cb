"""Reliability, round two (issue #37) in the app and before decoding: items 11 (a bad GFR_MAX_UPLOAD), 12 (the
app's controls and limits given NaN, text or negatives), 18 (a photo refused for its output size is never
decoded; SIGTERM removes the app's results folder as Ctrl-C does). Each test fails on the code before it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from gfr_core.tools.cli import main
from helpers import smooth_photo, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_a_bad_upload_limit_is_one_line_and_the_app_does_not_start(tmp_path):
    env = dict(os.environ, GFR_MAX_UPLOAD="abc", HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip() == (
        "gfr app: GFR_MAX_UPLOAD must be a size above zero such as 25mb, 500kb or 1gb, got 'abc'"
    )


@pytest.mark.parametrize(
    ("name", "unit"),
    [("GFR_VIDEO_MAX_SECONDS", "seconds"), ("GFR_VIDEO_MAX_PIXELS", "pixels"), ("GFR_MAX_OUTPUT_PIXELS", "pixels")],
)
def test_a_bad_server_limit_is_one_line_and_the_app_does_not_start(name, unit):
    env = dict(os.environ, HF_HUB_OFFLINE="1", **{name: "lots"})
    res = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().startswith(f"gfr app: {name} must be a positive number of {unit} (e.g. ")
    assert res.stderr.strip().endswith("got 'lots'") and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("upscale", ["nan", "abc", "-1", "inf"])
def test_the_apps_upscale_is_checked_with_its_own_message(tmp_path, upscale):
    from demo import logic

    Image.fromarray(smooth_photo(40, 40)).save(tmp_path / "p.png")
    with pytest.raises(gr.Error, match="Upscale must be a number from 1 to 8"):
        logic.restore_photo(str(tmp_path / "p.png"), "embedded", 0.0, upscale, False, False)


@pytest.mark.parametrize("value", ["-1", "nan", "lots"])
def test_the_apps_output_limit_must_be_positive(monkeypatch, value):
    from demo import logic

    monkeypatch.setenv("GFR_MAX_OUTPUT_PIXELS", value)
    with pytest.raises(gr.Error, match="GFR_MAX_OUTPUT_PIXELS must be a positive number of pixels"):
        logic.max_output_pixels()


def test_a_photo_refused_for_its_output_size_is_never_decoded(tmp_path, monkeypatch, capsys):
    Image.fromarray(smooth_photo(300, 400)).save(tmp_path / "big.png")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a photo that its header already refuses")

    monkeypatch.setattr("gfr_core.io.image.Image.Image.load", no_decoding)
    model = tiny_checkpoint(tmp_path / "tiny.safetensors")
    argv = ["restore", str(tmp_path / "big.png"), "-o", str(tmp_path / "o"), "--upscale", "8"]
    assert main([*argv, "--model", str(model), "--max-output-megapixels", "1"]) == 1
    err = capsys.readouterr().err
    assert "over the 1 MP output limit" in err and "the largest upscale for this photo is 2.88" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sigterm_removes_the_apps_results_folder(tmp_path):
    port = _free_port()
    env = dict(os.environ, TMPDIR=str(tmp_path), GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(1)
        (results,) = tmp_path.glob("gfr-app-*")
        (results / "restored-1.png").write_bytes(b"a result")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not results.exists()
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("seed", "group", "steps", "message"),
    [
        (7, "bogus", 60, "Layer group must be one of"),
        (-3, "fine", 60, "sample seed"),
        (7, "fine", 0, "Projection steps"),
    ],
)
def test_project_my_face_refuses_bad_controls_before_any_work(monkeypatch, seed, group, steps, message):
    """The controls are checked before the face is restored and projected (minutes on a CPU at 1000 steps)."""
    from demo import logic

    ran = []
    monkeypatch.setattr(logic.an, "project", lambda *a, **k: ran.append(1))
    with pytest.raises(gr.Error, match=message):
        logic.project_face(str(ROOT / "demo" / "examples" / "face-obama.png"), "embedded", seed, group, steps)
    assert ran == []
