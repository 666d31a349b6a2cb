"""FID (Fréchet distance, Inception features of both weight files) and the ArcFace identity network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from gfr_core.metrics import fid_from_features, frechet_distance, identity_similarity
from gfr_core.models.arcface import ResNetArcFace, to_identity_input
from gfr_core.models.inception import InceptionFeatures
from gfr_core.models.local_weights import WeightsNotFound
from helpers import smooth_photo, tiny_prior_and_faces


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6))
    mu, cov = a.mean(0), np.cov(a, rowvar=False)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-8)
    # Diagonal covariances: |dmu|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)) = |dmu|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    m1, m2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    want = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(want, rel=1e-12)
    # Symmetric, and real and non-negative for the singular covariances of a set smaller than its dimension.
    b = rng.normal(size=(10, 40))
    c = rng.normal(1.0, 2.0, size=(12, 40))
    d1, d2 = fid_from_features(b, c), fid_from_features(c, b)
    assert d1 == pytest.approx(d2, rel=1e-6) and d1 > 0
    # Full-rank case against the textbook formula with scipy's matrix square root.
    from scipy import linalg

    e, f = rng.normal(size=(200, 5)), rng.normal(0.3, 1.5, size=(150, 5)) @ rng.normal(size=(5, 5))
    se, sf = np.cov(e, rowvar=False), np.cov(f, rowvar=False)
    textbook = np.sum((e.mean(0) - f.mean(0)) ** 2) + np.trace(se + sf - 2 * linalg.sqrtm(se @ sf).real)
    assert fid_from_features(e, f) == pytest.approx(textbook, rel=1e-8)
    # Equal covariances, shifted means: exactly the squared shift.
    assert fid_from_features(a, a + 0.5) == pytest.approx(6 * 0.25, rel=1e-9)
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(mu, cov, mu[:3], cov[:3, :3])
    with pytest.raises(ValueError, match="at least 2"):
        fid_from_features(a[:1], a)


def _save(state: dict, path) -> str:
    torch.save(state, path)
    return str(path)


def test_torchvision_inception_features_equal_torchvision(tmp_path, monkeypatch):
    torch.manual_seed(0)
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).eval()
    monkeypatch.setenv("GFR_INCEPTION_WEIGHTS", _save(tv.state_dict(), tmp_path / "inc.pth"))  # with fc and AuxLogits
    m = InceptionFeatures.from_file("inception")
    tv.fc = torch.nn.Identity()
    x = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(m(x), tv(x), atol=1e-5)
    small = torch.rand(2, 3, 64, 64) * 2 - 1  # other sizes are resized to 299 first
    up = F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(m(small), tv(up), atol=1e-5)
    imgs = (np.random.default_rng(0).random((3, 64, 64, 3)) * 255).astype(np.uint8)
    f = m.images(imgs, batch=2)
    assert f.shape == (3, 2048) and f.dtype == np.float64


def test_fid_inception_uses_the_fid_graph(tmp_path, monkeypatch):
    torch.manual_seed(1)
    fid_net = InceptionFeatures(variant="inception-fid")
    state = {k: v for k, v in fid_net.net.state_dict().items() if not k.endswith("num_batches_tracked")}  # an old file
    state |= {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
    monkeypatch.setenv("GFR_INCEPTION_FID_WEIGHTS", _save(state, tmp_path / "pt_inception.pth"))
    m = InceptionFeatures.from_file("inception-fid")
    tvm = InceptionFeatures(variant="inception")
    tvm.net.load_state_dict(m.net.state_dict())
    x = torch.rand(1, 3, 299, 299) * 2 - 1
    a, b = m(x), tvm(x)
    assert (a - b).abs().max() > 0.05 * a.abs().max()  # same weights, other pooling (random weights: tiny values)
    # Pools of the FID graph: A/C/E_1 average without the padding, the last E block max-pools.
    ones = torch.ones(1, 288, 35, 35)
    pool_a = m.net.Mixed_5d(ones)[:, -64:]  # InceptionA's branch_pool channels (pool_features 64)
    assert pool_a.std(dim=(2, 3)).max() < 1e-5  # constant input -> constant pooled branch
    assert tvm.net.Mixed_5d(ones)[:, -64:].std(dim=(2, 3)).max() > 1e-4  # torchvision counts the zero padding
    z = torch.randn(1, 4, 9, 9)
    assert torch.equal(type(m.net.Mixed_7c).pool(z), F.max_pool2d(z, 3, 1, 1))
    assert torch.allclose(type(m.net.Mixed_7b).pool(z), F.avg_pool2d(z, 3, 1, 1, count_include_pad=False))
    # A file of another network: one line naming the file.
    bad = _save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, tmp_path / "alexnet.pth")
    with pytest.raises(ValueError, match="not Inception-v3 weights"):
        InceptionFeatures.from_file("inception-fid", bad)


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for var in ("GFR_INCEPTION_FID_WEIGHTS", "GFR_ARCFACE_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(
        WeightsNotFound, match="pt_inception-2015-12-05-6726825d.pth.*pytorch-fid.*GFR_INCEPTION_FID_WEIGHTS"
    ):
        InceptionFeatures.from_file("inception-fid")
    with pytest.raises(WeightsNotFound, match="arcface_resnet18.pth.*GFPGAN.*GFR_ARCFACE_WEIGHTS"):
        ResNetArcFace.from_file()


def test_arcface_layout_is_gfpgans_resnet18():
    sd = ResNetArcFace().state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["conv1.weight"] == (64, 1, 3, 3) and shapes["prelu.weight"] == (1,)
    assert shapes["layer1.0.bn0.weight"] == (64,) and "layer1.0.downsample.0.weight" not in shapes
    assert shapes["layer2.0.conv1.weight"] == (64, 64, 3, 3) and shapes["layer2.0.conv2.weight"] == (128, 64, 3, 3)
    assert shapes["layer2.0.downsample.0.weight"] == (128, 64, 1, 1) and shapes[
        "layer2.0.downsample.1.running_var"
    ] == (128,)
    assert shapes["layer4.1.conv2.weight"] == (512, 512, 3, 3) and "layer5.0.bn0.weight" not in shapes
    assert (
        shapes["fc5.weight"] == (512, 512 * 8 * 8)
        and shapes["bn5.running_mean"] == (512,)
        and shapes["bn4.weight"] == (512,)
    )


def test_arcface_loads_and_measures_identity(tmp_path):
    torch.manual_seed(0)
    ref = ResNetArcFace()
    for mod in ref.modules():  # non-trivial BatchNorm statistics, so a wrong load would show
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 2.0)
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}  # saved from DataParallel
    m = ResNetArcFace.from_file(_save(state, tmp_path / "arcface_resnet18.pth"))
    assert not any(p.requires_grad for p in m.parameters())
    x = torch.rand(2, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x), ref(x)) and m(x).shape == (2, 512)
    with pytest.raises(ValueError, match=r"\(B,1,128,128\).*to_identity_input"):
        m(torch.zeros(1, 3, 128, 128))
    rgb = torch.rand(1, 3, 64, 64) * 2 - 1
    g = to_identity_input(rgb)
    assert g.shape == (1, 1, 128, 128)
    assert torch.allclose(
        to_identity_input(torch.ones(1, 3, 8, 8) * 0.5), torch.full((1, 1, 128, 128), 0.5 * 0.9999), atol=1e-6
    )
    faces = np.stack([smooth_photo(64, 64, seed=s) for s in range(3)])
    same = identity_similarity(m, faces, faces, batch=2)
    assert same == pytest.approx([1.0] * 3, abs=1e-5)
    other = identity_similarity(m, faces, faces[::-1].copy())
    assert (
        other[1] == pytest.approx(1.0, abs=1e-5) and other[0] < 0.9999 and other[0] == pytest.approx(other[2], abs=1e-6)
    )
    with pytest.raises(ValueError, match="differ in shape"):
        identity_similarity(m, faces, faces[:2])
    bad = _save({k: v for k, v in ref.state_dict().items() if not k.startswith("fc5.")}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not ArcFace.*fc5"):
        ResNetArcFace.from_file(bad)


def test_restorer_training_with_the_identity_loss(tmp_path, monkeypatch):
    import dataclasses
    import json

    from gfr_core.training import RestorerConfig, train_restorer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv("GFR_ARCFACE_WEIGHTS", raising=False)
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
        w_identity=10.0,
    )
    with pytest.raises(WeightsNotFound, match="arcface_resnet18.pth"):
        train_restorer(cfg)  # fails before anything is trained or written
    assert not (tmp_path / "r" / "state.pt").exists()
    weights = _save(ResNetArcFace().state_dict(), tmp_path / "arcface.pth")
    train_restorer(dataclasses.replace(cfg, arcface_weights=weights))
    losses = json.loads((tmp_path / "r" / "training.json").read_text())["last_losses"]
    assert set(losses) == {"l1", "pyramid", "identity"} and np.isfinite(losses["identity"]) and losses["identity"] > 0
