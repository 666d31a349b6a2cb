"""The evaluation harness: metrics, fixed-seed degradations, baselines, LPIPS when its weights are present, and `gfr eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from gfr_core import degrade as dg
from gfr_core import evaluate as ev
from gfr_core.tools.cli import main
from helpers import smooth_photo


def test_psnr_and_ssim():
    a = np.full((32, 32, 3), 100, np.uint8)
    assert ev.psnr(a, a) == float("inf")
    assert ev.psnr(a, a + 1) == pytest.approx(10 * np.log10(255**2), abs=1e-9)  # MSE 1: 48.13 dB
    rng = np.random.default_rng(0)
    img = smooth_photo(48, 48, seed=0)
    noisy = {s: np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8) for s in (5, 20)}
    assert ev.ssim(img, img) == pytest.approx(1.0)
    assert ev.ssim(img, noisy[20]) < ev.ssim(img, noisy[5]) < 0.99
    assert ev.ssim(img, noisy[20]) == pytest.approx(ev.ssim(noisy[20], img))


@pytest.fixture
def no_torch_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for var in ("GFR_ALEXNET_WEIGHTS", "GFR_INCEPTION_FID_WEIGHTS", "GFR_INCEPTION_WEIGHTS", "GFR_ARCFACE_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.slow
def test_evaluate_on_the_val_split(shared_data, no_torch_cache, monkeypatch):
    tar = shared_data / "faces128-lfw-val.tar"
    res = ev.evaluate(["embedded"], tar, limit=6)
    assert res.num_images == 6 and list(res.methods) == ["bicubic", "embedded"]
    for m in res.methods.values():
        assert np.isfinite(m["psnr"]) and 0 < m["ssim"] < 1 and m["lmd_images"] > 0 and len(m["per_image"]) == 6
        assert "lpips" not in m
    assert "alexnet-owt-7be5be79.pth" in res.unavailable["lpips"] and set(res.unavailable) == {
        "lpips",
        "fid",
        "identity",
    }
    again = ev.evaluate(["embedded"], tar, limit=6, seed=0)  # same seed, same degraded faces, same numbers
    assert again.methods["embedded"]["per_image"] == res.methods["embedded"]["per_image"]
    assert ev.evaluate(["embedded"], tar, limit=6, seed=1).methods["bicubic"]["psnr"] != res.methods["bicubic"]["psnr"]

    # With LPIPS weights on disk (a random AlexNet trunk here; the linear layers from the lpips package).
    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, no_torch_cache / "alex.pth")
    monkeypatch.setenv("GFR_ALEXNET_WEIGHTS", str(no_torch_cache / "alex.pth"))
    res2 = ev.evaluate(["embedded"], tar, limit=6)
    assert "lpips" not in res2.unavailable
    for name, m in res2.methods.items():
        assert m["lpips"] > 0 and m["lpips"] == pytest.approx(np.mean([p["lpips"] for p in m["per_image"]]))
        assert m["psnr"] == res.methods[name]["psnr"]
    assert "LPIPS" in res2.table() and res2.fid_weights is None

    # With Inception (torchvision's file only) and ArcFace weights on disk (random weights again).
    from gfr_core.metrics import fid_from_features, identity_similarity
    from gfr_core.models.arcface import ResNetArcFace
    from gfr_core.models.inception import InceptionFeatures

    inc = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
    torch.save(inc.state_dict(), no_torch_cache / "inception.pth")
    torch.save(ResNetArcFace().state_dict(), no_torch_cache / "arcface.pth")
    monkeypatch.setenv("GFR_INCEPTION_WEIGHTS", str(no_torch_cache / "inception.pth"))
    monkeypatch.setenv("GFR_ARCFACE_WEIGHTS", str(no_torch_cache / "arcface.pth"))
    res3 = ev.evaluate(["embedded"], tar, limit=4, lpips=False)
    assert res3.fid_weights == "inception" and res3.unavailable == {"lpips": "not requested"}
    gts, _ = ev.load_eval_faces(tar, size=64, zoom=1.3, limit=4)
    net, arc = InceptionFeatures.from_file("inception"), ResNetArcFace.from_file()
    for m in res3.methods.values():
        assert m["fid"] > 0
        ids = [p["identity"] for p in m["per_image"]]
        assert all(-1 <= v <= 1 for v in ids) and m["identity"] == pytest.approx(np.mean(ids))
    lqs = np.stack([dg.degrade(gt, np.random.default_rng((0, i)), "gfpgan") for i, gt in enumerate(gts)])
    assert res3.methods["bicubic"]["fid"] == pytest.approx(
        fid_from_features(net.images(lqs), net.images(gts)), rel=1e-6
    )
    assert [p["identity"] for p in res3.methods["bicubic"]["per_image"]] == pytest.approx(
        identity_similarity(arc, lqs, gts), abs=1e-6
    )
    assert "FID" in res3.table() and "ID cos" in res3.table()
    one = ev.evaluate(["embedded"], tar, limit=1, lpips=False, identity=False)
    assert "fid" not in one.methods["embedded"] and "at least 2 faces" in one.unavailable["fid"]


def test_gfr_eval_cli(shared_data, no_torch_cache, capsys):
    assert (
        main(
            [
                "eval",
                "--model",
                "embedded",
                "--data",
                str(shared_data / "faces128-lfw-val.tar"),
                "--limit",
                "3",
                "--baseline-model",
                "embedded-noprior",
                "--json",
                "--summary",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert list(out["methods"]) == ["bicubic", "embedded", "embedded-noprior"] and out["num_images"] == 3
    assert "per_image" not in out["methods"]["embedded"] and "lpips" in out["unavailable"]
    assert (
        main(["eval", "--model", "embedded", "--data", str(shared_data / "faces128-lfw-val.tar"), "--limit", "3"]) == 0
    )
    text = capsys.readouterr().out
    assert "embedded vs bicubic:" in text and "not measured: lpips: alexnet weights not found" in text
    assert (
        "not measured: fid: inception-fid weights not found" in text
        and "not measured: identity: arcface weights" in text
    )
    assert (
        main(
            [
                "eval",
                "--model",
                "embedded",
                "--data",
                str(shared_data / "faces128-lfw-val.tar"),
                "--limit",
                "2",
                "--skip",
                "lpips",
            ]
        )
        == 0
    )
    assert "not measured: lpips: not requested" in capsys.readouterr().out
