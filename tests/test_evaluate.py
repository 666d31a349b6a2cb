"""The evaluation harness: metrics, fixed-seed degradations, baselines, LPIPS when its weights are present, and `gfr eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision

from gfr_core import evaluate as ev
from gfr_core.cli import main
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
    monkeypatch.delenv("GFR_ALEXNET_WEIGHTS", raising=False)
    return tmp_path


def test_evaluate_on_the_val_split(shared_data, no_torch_cache, monkeypatch):
    tar = shared_data / "faces128-lfw-val.tar"
    res = ev.evaluate(["embedded"], tar, limit=6)
    assert res.num_images == 6 and list(res.methods) == ["bicubic", "embedded"]
    for m in res.methods.values():
        assert np.isfinite(m["psnr"]) and 0 < m["ssim"] < 1 and m["lmd_images"] > 0 and len(m["per_image"]) == 6
        assert "lpips" not in m
    assert "alexnet-owt-7be5be79.pth" in res.unavailable["lpips"] and set(res.unavailable) == {"lpips", "fid", "arcface_identity"}
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
    assert "LPIPS" in res2.table()


def test_gfr_eval_cli(shared_data, no_torch_cache, capsys):
    assert main(["eval", "--model", "embedded", "--data", str(shared_data / "faces128-lfw-val.tar"), "--limit", "3",
                 "--baseline-model", "embedded-noprior", "--json", "--summary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["methods"]) == ["bicubic", "embedded", "embedded-noprior"] and out["num_images"] == 3
    assert "per_image" not in out["methods"]["embedded"] and "lpips" in out["unavailable"]
    assert main(["eval", "--model", "embedded", "--data", str(shared_data / "faces128-lfw-val.tar"), "--limit", "3"]) == 0
    text = capsys.readouterr().out
    assert "embedded vs bicubic:" in text and "not measured: lpips: alexnet weights not found" in text
