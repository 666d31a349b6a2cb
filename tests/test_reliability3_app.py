"""Reliability, round three (issue #41) in the app: its start-up settings (10, 30), the API's NaN controls
(22, 27), the Photo input's undecodable uploads (23), the Degradation lab offline (36) and a photo without a
face (37). Each test fails on the code before these fixes."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from helpers import smooth_photo, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "demo" / "examples"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("GRADIO_SERVER_PORT", "abc", "GRADIO_SERVER_PORT must be a port number from 1 to 65535, got 'abc'"),
        ("GRADIO_SERVER_PORT", "70000", "GRADIO_SERVER_PORT must be a port number from 1 to 65535, got '70000'"),
        ("GFR_MAX_UPLOAD", "0mb", "GFR_MAX_UPLOAD must be a size above zero such as 25mb, 500kb or 1gb, got '0mb'"),
        ("GFR_MAX_PIXELS", "abc", "GFR_MAX_PIXELS must be a positive whole number of pixels"),
    ],
)
def test_a_bad_setting_is_one_line_and_the_app_does_not_start(name, value, says):
    env = dict(os.environ, HF_HUB_OFFLINE="1", **{name: value})
    res = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    err = res.stderr.strip()
    assert res.returncode == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("gfr app: ") and says in err, err


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda lg: lg.sample_prior(0, 4, math.nan), "Truncation ψ must be a number from 0 to 2"),
        (lambda lg: lg.sample_prior(0, math.nan, 0.7), "Samples must be a number from 1 to 16"),
        (lambda lg: lg.style_mixing(0, 100, math.nan, "coarse", 0.7), "Rows / columns must be a number from 1 to 8"),
        (lambda lg: lg.style_mixing(0, 100, 3, "coarse", math.inf), "Truncation ψ must be a number from 0 to 2"),
        (lambda lg: lg.interpolation(1, 2, math.nan, "w", 1.0), "Frames must be a number from 2 to 32"),
        (lambda lg: lg.interpolation(1, 2, 5, "w", math.nan), "Truncation ψ must be a number from 0 to 2"),
        (lambda lg: lg.interpolation(1, 2, 5, "q", 1.0), "Space must be 'w' or 'z'"),
        (
            lambda lg: lg.project_face(str(EXAMPLES / "face-obama.png"), "embedded", math.nan, "fine", 10),
            "The sample seed must be a whole number",
        ),
    ],
)
def test_the_prior_explorers_controls_given_nan_are_one_app_line(call, says):
    from demo import logic

    with pytest.raises(gr.Error, match=says):  # psi=NaN drew an all-black image; steps=NaN a ValueError
        call(logic)


def test_the_seed_boxes_pass_nan_to_the_apps_own_check():
    """Gradio's Number with precision 0 raised its own ValueError for NaN (the API's /project)."""
    from demo import build_demo

    demo = build_demo()
    numbers = [b for b in demo.blocks.values() if isinstance(b, gr.Number)]
    assert numbers and all(b.precision is None for b in numbers)
    assert all(math.isnan(b.preprocess(math.nan)) for b in numbers)


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)])
def test_an_undecodable_photo_upload_gets_gfrs_line(tmp_path, content):
    from gradio.data_classes import ImageData

    from demo import logic
    from demo.ui import read_by_gfr

    bad = tmp_path / "photo.jpg"
    bad.write_bytes(content)
    image = read_by_gfr(gr.Image(type="filepath", format="png"))
    path = image.preprocess(ImageData(path=str(bad), orig_name="photo.jpg"))  # Gradio's own decode raised here
    assert path == str(bad)
    why = "the file is empty" if not content else "not an image file PIL can read"
    with pytest.raises(gr.Error, match=f"photo.jpg: {why}"):
        logic.restore_photo(None, "embedded", 0.0, 2, False, False, image=path)


def test_a_photo_without_a_face_is_upscaled_with_a_note(tmp_path):
    from demo import logic

    plain = tmp_path / "wall.png"
    Image.fromarray(smooth_photo(60, 80)).save(plain)
    (before, after), gallery, _, out, status = logic.restore_photo(str(plain), "embedded", 0.0, 2, False, False)
    assert gallery == [] and after.shape[:2] == (120, 160) and Path(out).is_file()
    assert status.startswith("No face found: the photo was upscaled") and "'Aligned face input'" in status
    assert "aligned input'" not in status  # the old toast named a checkbox that does not exist


def test_the_lab_offers_what_runs_and_shows_models_of_every_face_size(tmp_path):
    from demo import logic

    offered = [name for _, name in logic.runnable(logic.model_choices("restore"))]
    assert "embedded" in offered and "gfpgan-v1.4" not in offered  # offline: a Hub model cannot run here
    other = str(tiny_checkpoint(tmp_path / "tiny.safetensors"))  # 64 px at crop zoom 1.0, not embedded's 1.3
    gallery, rows = logic.degradation_lab(str(EXAMPLES / "clean-0.png"), 4, 4, 8, 70, ["embedded", other], 0)
    labels = [r[0] for r in rows]
    assert "embedded (64 px, zoom 1.3)" in labels and f"{other} (64 px, zoom 1)" in labels, labels
    assert sum(label.startswith("degraded (bicubic)") for label in labels) == 2  # each size its own baseline
    assert len(gallery) == 6 and all(np.isfinite(r[1]) for r in rows)
