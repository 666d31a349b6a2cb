"""LPIPS and the VGG19 perceptual loss: file lookup, strict loading, and parity with the reference LPIPS package.

The trained torchvision weights are not downloadable here, so the trunks get random weights written in
torchvision's file layout; the parity test gives the reference package the very same trunk.
"""

from __future__ import annotations

import dataclasses
import json

import lpips as lpips_ref
import numpy as np
import pytest
import torch
import torchvision

from gfr_core.models.local_weights import WeightsNotFound, find_weights
from gfr_core.models.vgg import LPIPS, VGGPerceptualLoss
from helpers import tiny_prior_and_faces


@pytest.fixture(autouse=True)
def _no_user_weights(monkeypatch, tmp_path):
    """An empty torch hub cache and no GFR_*_WEIGHTS variables, whatever the machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for v in ("GFR_VGG19_WEIGHTS", "GFR_VGG16_WEIGHTS", "GFR_ALEXNET_WEIGHTS", "GFR_LPIPS_WEIGHTS"):
        monkeypatch.delenv(v, raising=False)


def _torchvision_features_file(arch, path, *, seed=0):
    """A torchvision-layout ``features.*`` state dict of ``arch`` with random weights."""
    torch.manual_seed(seed)
    net = getattr(torchvision.models, arch)(weights=None)
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, path)
    return path


def test_missing_weights_fail_at_once_with_where_to_put_them():
    with pytest.raises(WeightsNotFound, match=r"vgg19-dcbb9e9d\.pth.*GFR_VGG19_WEIGHTS"):
        VGGPerceptualLoss.from_file()
    with pytest.raises(WeightsNotFound, match=r"alexnet-owt-7be5be79\.pth"):
        LPIPS.from_files("alex")
    with pytest.raises(ValueError, match="unknown weights"):
        find_weights("resnet50")
    assert find_weights("lpips-alex").name == "alex.pth"  # the lpips package ships its linear layers


@pytest.mark.parametrize("net,arch", [("alex", "alexnet"), ("vgg", "vgg16")])
def test_lpips_matches_the_reference_package(net, arch, tmp_path):
    trunk = _torchvision_features_file(arch, tmp_path / f"{arch}.pth")
    ours = LPIPS.from_files(net, trunk=trunk)
    ref = lpips_ref.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    state = torch.load(trunk, weights_only=True)
    for name, p in ref.net.named_parameters():  # slice{k}.{index}.{weight|bias} -> features.{index}.*
        _, idx, kind = name.split(".")
        p.data.copy_(state[f"features.{idx}.{kind}"])
    torch.manual_seed(1)
    x, y = torch.rand(3, 3, 64, 64) * 2 - 1, torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = ref(x, y).flatten()
    got = ours(x, y)
    assert got.shape == (3,) and torch.allclose(got, expected, rtol=1e-5, atol=1e-7), (got, expected)
    assert torch.equal(ours(x, x), torch.zeros(3))


def test_lpips_rejects_foreign_files(tmp_path):
    trunk = _torchvision_features_file("alexnet", tmp_path / "a.pth")
    bad = torch.load(trunk, weights_only=True) | {"features.0.extra": torch.zeros(1)}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="unmatched"):
        LPIPS.from_files("alex", trunk=tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="linear layers"):
        LPIPS.from_files("alex", trunk=trunk, lin=find_weights("lpips-vgg"))  # VGG's layers for the AlexNet trunk


def test_vgg_perceptual_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("GFR_VGG19_WEIGHTS", str(_torchvision_features_file("vgg19", tmp_path / "vgg19.pth")))
    loss = VGGPerceptualLoss.from_file()
    torch.manual_seed(0)
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    y = torch.rand(2, 3, 64, 64) * 2 - 1
    assert float(loss(y, y)) == 0.0
    value = loss(x, y)
    value.backward()
    assert value > 0 and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())  # a fixed feature extractor
    assert [f.shape[1] for f in loss.features(y)] == [64, 128, 256, 512, 512]


def test_restorer_training_with_the_perceptual_loss(tmp_path, monkeypatch):
    from gfr_core.training import RestorerConfig, train_restorer

    data, prior = tiny_prior_and_faces(tmp_path)
    cfg = RestorerConfig(
        data=str(data),
        out=str(tmp_path / "r"),
        prior=str(prior),
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
        w_adv=0.0,
        w_fm=0.0,
        w_perceptual=0.1,
    )
    with pytest.raises(WeightsNotFound):
        train_restorer(cfg)
    assert not (tmp_path / "r" / "state.pt").exists()
    cfg = dataclasses.replace(cfg, vgg_weights=str(_torchvision_features_file("vgg19", tmp_path / "vgg19.pth")))
    train_restorer(cfg)
    losses = json.loads((tmp_path / "r" / "training.json").read_text())["last_losses"]
    assert (
        set(losses) == {"l1", "pyramid", "perceptual"}
        and np.isfinite(losses["perceptual"])
        and losses["perceptual"] > 0
    )
