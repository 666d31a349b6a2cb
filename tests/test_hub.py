"""Registry and loading, tested for real against a loopback Hub server (tests/fakehub.py)."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _hub_client import run_in_child
from safetensors.torch import load_file

from fakehub import FakeHub
from gfr_core import ModelCard, UnknownModelError, get_card, list_models, load_model
from gfr_core.hub import ModelUnavailableError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "parity" / "gfpgan_clean_sfthalf_cmul2.safetensors"
REPO = "test-org/tiny-gfpgan"
FILE = "tiny.pth"


def _official_state_dict() -> dict[str, torch.Tensor]:
    t = load_file(str(FIXTURE))
    return {k[len("state_dict.") :]: v for k, v in t.items() if k.startswith("state_dict.")}


def _pth_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _card(sha256: str | None) -> dict:
    return dict(
        name="tiny-gfpgan",
        arch="gfpgan",
        config=dict(
            out_size=64, num_style_feat=32, channel_multiplier=2, narrow=0.0625, sft_half=True, flavour="clean"
        ),
        task="restore",
        repo_id=REPO,
        filename=FILE,
        revision="main",
        sha256=sha256,
        converter="gfpgan_clean",
        license="test",
        paper="test",
    )


def _load_in_child(
    hub: FakeHub | None, cache: Path, card: dict, *, endpoint: str | None = None, offline: bool = False
) -> str:
    env = dict(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1" if offline else "0")
    env["HF_ENDPOINT"] = endpoint or (hub.endpoint if hub else "http://127.0.0.1:9")
    return run_in_child(card, env)


def test_download_checksum_convert_strict_load_and_cache_hit(tmp_path):
    import hashlib

    data = _pth_bytes({"params_ema": _official_state_dict()})
    card = _card(hashlib.sha256(data).hexdigest())
    with FakeHub({(REPO, FILE): data}) as hub:
        out = _load_in_child(hub, tmp_path, card)
        assert out.startswith("OK"), out
        assert float(out.split()[1]) <= 1e-4  # the downloaded weights reproduce the official output
        assert hub.gets() == 1
        out2 = _load_in_child(hub, tmp_path, card)
        assert out2.startswith("OK"), out2
        assert hub.gets() == 1, "second load must come from the cache"
    # server gone and offline: still loads from the cache
    assert _load_in_child(None, tmp_path, card, offline=True).startswith("OK")


def test_wrong_checksum_is_rejected(tmp_path):
    data = _pth_bytes({"params_ema": _official_state_dict()})
    with FakeHub({(REPO, FILE): data}) as hub:
        out = _load_in_child(hub, tmp_path, _card("0" * 64))
    assert out.startswith("ERR ChecksumError"), out
    assert "it was deleted" in out
    left = [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > 1000]
    assert left == [], f"a file that failed its sha256 stayed in the cache: {left}"


def test_unknown_key_is_rejected(tmp_path):
    import hashlib

    sd = _official_state_dict()
    sd["stylegan_decoder.extra_layer.weight"] = torch.zeros(3)
    data = _pth_bytes({"params_ema": sd})
    with FakeHub({(REPO, FILE): data}) as hub:
        out = _load_in_child(hub, tmp_path, _card(hashlib.sha256(data).hexdigest()))
    assert out.startswith("ERR UnmatchedKeysError"), out
    assert "stylegan_decoder.extra_layer.weight" in out


class _Boom:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_with_code_is_rejected(tmp_path):
    import hashlib

    marker = tmp_path / "pwned"
    data = _pth_bytes({"params_ema": _official_state_dict(), "payload": _Boom(str(marker))})
    with FakeHub({(REPO, FILE): data}) as hub:
        out = _load_in_child(hub, tmp_path / "cache", _card(hashlib.sha256(data).hexdigest()))
    assert out.startswith("ERR UnsafeCheckpointError"), out
    assert not marker.exists()


def test_missing_file_on_hub_gives_clear_error(tmp_path):
    with FakeHub({}) as hub:
        out = _load_in_child(hub, tmp_path, _card(None))
    assert out.startswith("ERR ModelUnavailableError"), out
    assert "HTTP 404" in out or "could not download" in out


def test_registered_card_wrong_size_is_rejected_via_cli(tmp_path):
    """The real gfpgan-v1.4 card: a mirror serving the wrong bytes is refused before loading."""
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="0", PYTHONPATH=str(ROOT))
    with FakeHub({("mirror/gfpgan", "GFPGANv1.4.pth"): b"not the release"}) as hub:
        env.update(HF_ENDPOINT=hub.endpoint, GFR_HUB_MIRROR="mirror/gfpgan")
        res = subprocess.run(
            [sys.executable, "-m", "gfr_core", "download", "gfpgan-v1.4"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert res.returncode == 2
    assert "expected 348632874" in res.stderr and "Traceback" not in res.stderr


def test_offline_error_is_fast_and_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        load_model("gpen-bfr-512")
    assert time.perf_counter() - t0 < 5
    msg = str(err.value)
    assert "GPEN-BFR-512.pth" in msg and "gfr download gpen-bfr-512" in msg and "\n" not in msg


def test_unreachable_endpoint_is_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        load_model("gfpgan-v1.3")
    assert time.perf_counter() - t0 < 5


def test_registry_contents_and_frozen_cards():
    names = list_models()
    for n in [
        "gfpgan-v1.4",
        "gfpgan-v1.3",
        "gfpgan-v1.2",
        "gfpgan-v1",
        "gpen-bfr-512",
        "gpen-bfr-256",
        "stylegan2-ffhq-512",
        "stylegan2-ffhq-1024",
    ]:
        assert n in names
    card = get_card("gfpgan-v1.4")
    assert card.sha256 == "e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad"
    assert card.size_bytes == 348_632_874
    assert get_card("gfpgan-v1.3").sha256 == "c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70"
    assert get_card("gfpgan-v1.3").size_bytes == card.size_bytes  # same architecture, same byte count
    assert get_card("retinaface-r50").size_bytes == 109_497_761
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        card.config["out_size"] = 3  # type: ignore[index]
    assert set(list_models("prior")) >= {"stylegan2-ffhq-512", "stylegan2-ffhq-1024"}


def test_unknown_model_name_suggests():
    with pytest.raises(UnknownModelError, match="gfpgan-v1.4"):
        load_model("gfpgan-1.4")


def test_local_file_is_loaded_and_architecture_guessed(tmp_path):
    from gfr_core import hub

    card = ModelCard(**_card(None))
    if card.name not in hub.list_models():
        hub.register(card)
    path = tmp_path / "mine.pth"
    torch.save({"params_ema": _official_state_dict()}, path)
    model = load_model(path)
    t = load_file(str(FIXTURE))
    with torch.no_grad():
        assert (model(t["input.x"]) - t["output.0"]).abs().max() <= 1e-4
    with pytest.raises(ModelUnavailableError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pth")


def test_embedded_models_work_offline_and_are_named_in_errors(tmp_path, monkeypatch):
    from gfr_core import FaceRestorer
    from gfr_core.hub import is_cached

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    for name in ("embedded", "embedded-prior", "embedded-noprior"):
        card = get_card(name)
        assert card.embedded and is_cached(card) and card.sha256 and card.size_bytes
        assert "Labeled Faces in the Wild" in card.license
    r = FaceRestorer.from_pretrained("embedded")
    assert r.face_size == get_card("embedded").face_size and r.crop_zoom == get_card("embedded").crop_zoom
    g = load_model("embedded-prior")
    assert float(g.w_avg.abs().sum()) > 0  # the truncation centre travels with the weights
    with pytest.raises(ModelUnavailableError, match="offline model 'embedded'"):
        load_model("gfpgan-v1.4")


def test_embedded_checksum_is_enforced(tmp_path):
    import dataclasses

    from gfr_core.hub import ChecksumError, resolve_file

    card = dataclasses.replace(get_card("embedded"), name="embedded-tampered", sha256="f" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        resolve_file(card)


def test_the_test_run_has_its_own_hugging_face_cache():
    """conftest gives every run a temporary HF_HOME, so a user's cached checkpoints cannot make a test pass
    (checked in a child process, as the CLI tests run: other tests here repoint the cache in-process)."""
    code = "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"
    cache = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert "gfr-test-hf-" in os.environ["HF_HOME"] and cache.startswith(os.environ["HF_HOME"])
