"""The app on a Hugging Face ZeroGPU Space (issue #36, part 1): with the real ``spaces`` package importable, every
callback that runs a network goes through ``spaces.GPU`` with a duration fitted to the request; without it,
the app is as before. Both build and serve."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "demo" / "examples"


def test_with_spaces_each_network_callback_asks_for_a_gpu_fitted_to_the_request(tmp_path):
    from demo import gpu, logic, video
    from gfr_core import read_image, write_image
    from gfr_core.video.synth import make_clip

    assert gpu.spaces is not None and not gpu.zero_gpu()  # installed by [dev]; this is no Space
    photo = EXAMPLES / "photo-group.png"
    big = tmp_path / "big.png"
    rgb = read_image(photo).rgb
    write_image(big, rgb.repeat(4, 0).repeat(4, 1))
    seconds = logic.restore_photo.gpu_seconds  # what the decorator hands spaces.GPU as its duration
    plain = seconds(str(photo), "embedded", 0, 2, False, False, False)
    assert 10 <= plain <= gpu.MAX_SECONDS
    assert seconds(str(big), "embedded", 0, 2, False, False, True) > seconds(
        str(photo), "embedded", 0, 2, False, False, True
    )
    assert seconds(str(photo), "embedded", 0, 2, False, False, False, "torch", True) > plain  # face detail
    assert seconds(None, "embedded", 0, 2, False, False, False) >= 10  # no upload: the callback says so, quickly
    clip = tmp_path / "clip.mp4"
    make_clip(rgb, clip, frames=24, size=(160, 120), audio=False)
    assert video.restore_clip.gpu_seconds(str(clip), "embedded", 0, 2, True) == 15 + 3  # 0.1 s a frame
    for fn in (logic.sample_prior, logic.style_mixing, logic.interpolation, logic.project_face, logic.degradation_lab):
        assert fn.gpu_seconds() == 60, fn.__name__
    # outside a GPU call the models stay on the CPU; the callbacks keep their signature (Gradio reads it)
    assert gpu.device() is None and logic.get_restorer("embedded").device.type == "cpu"
    import inspect

    assert "progress" in inspect.signature(logic.restore_photo).parameters


def test_without_spaces_nothing_is_wrapped(tmp_path):
    blocker = tmp_path / "blocker" / "spaces"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('spaces is blocked for this test')\n")
    code = (
        "import demo.gpu as g, demo.logic as l, demo.video as v; "
        "print(g.spaces is None, hasattr(l.restore_photo, 'gpu_seconds'), hasattr(v.restore_clip, 'gpu_seconds'))"
    )
    env = dict(os.environ, PYTHONPATH=f"{tmp_path / 'blocker'}{os.pathsep}{ROOT}", HF_HUB_OFFLINE="1")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["True", "False", "False"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("spaces_importable", [True, False])
def test_the_app_builds_and_serves_with_and_without_spaces(tmp_path, spaces_importable):
    from gradio_client import Client, handle_file

    path = [str(ROOT)]
    if not spaces_importable:
        (tmp_path / "blocker" / "spaces").mkdir(parents=True)
        (tmp_path / "blocker" / "spaces" / "__init__.py").write_text("raise ImportError('blocked')\n")
        path.insert(0, str(tmp_path / "blocker"))
    port = _free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(path),
        GRADIO_SERVER_PORT=str(port),
        GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-3000:]
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                assert time.time() < deadline, "the app did not start within 180 s"
                time.sleep(1)
        client = Client(url, verbose=False)
        *_, status = client.predict(
            handle_file(str(EXAMPLES / "photo-single.png")), "embedded", 0, 2, False, False, False, api_name="/restore"
        )
        assert "1 face(s) restored with embedded" in status
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_space_card_preloads_the_default_models_file():
    front = yaml.safe_load((ROOT / "README.md").read_text().split("---")[1])
    from gfr_core import get_card
    from gfr_core.hub.registry import BEST_MODEL

    card = get_card(BEST_MODEL)  # the default wherever it is cached or the Hub is reachable
    assert front["app_file"] == "app.py" and front["suggested_hardware"] == "zero-a10g"
    assert f"{card.repo_id} {card.filename}" in front["preload_from_hub"]
    assert card.repo_id in front["models"]
    assert "spaces==" in (ROOT / "requirements.txt").read_text() and "av==" in (ROOT / "requirements.txt").read_text()
