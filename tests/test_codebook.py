"""Codebook priors (#42): CodeFormer, its stage-I VQGAN, RestoreFormer and RestoreFormer++, exact against the
official classes (the reference fixtures in ../shared/fixtures-codebook), and their converters strict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gfr_core.models import CodeFormer, RestoreFormer, UnmatchedKeysError, VQAutoEncoder
from gfr_core.models.codeformer import FAMILY as CODEFORMER
from gfr_core.models.restoreformer import FAMILY as RESTOREFORMER
from gfr_core.tools.verify import main, verify_manifest, verify_parity

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures-codebook"
PARITY = sorted((FIXTURES / "parity").glob("*.safetensors"))
MANIFESTS = sorted((FIXTURES / "manifests").glob("*.json"))
needs_fixtures = pytest.mark.skipif(not PARITY, reason="optional: ../shared/fixtures-codebook is not present")

SMALL_CF = dict(img_size=64, nf=32, ch_mult=(1, 1, 1), codebook_size=64, dim_embd=64, n_head=4, n_layers=2)
SMALL_RF = dict(resolution=32, ch=32, ch_mult=(1, 1, 1, 1), attn_resolutions=(4,), z_channels=32, embed_dim=16)


@needs_fixtures
@pytest.mark.parametrize("path", PARITY, ids=lambda p: p.stem)
def test_parity_with_the_official_classes(path):
    assert verify_parity(path) <= 1e-4


@needs_fixtures
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_full_size_layouts_of_every_released_configuration(path):
    n, m, problems = verify_manifest(path)
    assert n > 300 and m == 0, problems


@needs_fixtures
def test_the_verifier_takes_them_all():
    assert main([str(p) for p in PARITY + MANIFESTS]) == 0


def test_codeformer_fuses_only_when_w_is_positive():
    torch.manual_seed(0)
    net = CodeFormer(**SMALL_CF, connect_list=("32", "64")).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        base = net(x, w=0.0)
        for p in net.fuse_convs_dict.parameters():
            p.add_(torch.randn_like(p))
        assert torch.equal(net(x, w=0.0), base)  # w = 0 skips the fuse blocks entirely
        assert (net(x, w=0.7) - base).abs().max() > 1e-3
    with pytest.raises(ValueError, match="w must be in"):
        net(x, w=1.5)


def test_codeformer_converter_renames_the_release_and_refuses_strangers():
    with torch.device("meta"):
        ours = CodeFormer(**SMALL_CF, connect_list=("32",)).state_dict()
    official = {}
    for k, v in ours.items():
        k = k.replace(".nin_shortcut.", ".conv_out.")
        if k.startswith(("encoder.blocks.", "generator.blocks.")) and ".norm1." in k and ".conv1" not in k:
            parent = k.rsplit(".norm1.", 1)[0]
            if f"{parent}.q.weight" in ours:  # an attention block: the release calls its norm "norm"
                k = k.replace(".norm1.", ".norm.")
        official[k] = v
    cfg = CODEFORMER.config(**SMALL_CF, connect_list=("32",))
    assert set(CODEFORMER.converters["codeformer"](official, {}, cfg)) == set(ours)
    with pytest.raises(UnmatchedKeysError, match="cannot place 1 checkpoint key"):
        CODEFORMER.converters["codeformer"]({**official, "discriminator.weight": torch.zeros(1)}, {}, cfg)


def test_restoreformer_lightning_checkpoints_unwrap_and_drop_the_training_loss_by_name():
    with torch.device("meta"):
        ours = RestoreFormer(**SMALL_RF).state_dict()
    ckpt = {f"vqvae.{k}": v for k, v in ours.items()} | {"loss.discriminator.main.0.weight": torch.zeros(1)}
    cfg = RESTOREFORMER.config(**SMALL_RF)
    assert set(RESTOREFORMER.converters["restoreformer"](ckpt, {}, cfg)) == set(ours)
    with pytest.raises(UnmatchedKeysError, match="first_stage_model.weight"):
        RESTOREFORMER.converters["restoreformer"]({**ckpt, "first_stage_model.weight": torch.zeros(1)}, {}, cfg)


def test_restoreformer_plus_plus_attends_at_one_more_decoder_level():
    plain, plus = RestoreFormer(**SMALL_RF, heads=8, extra_levels=0), RestoreFormer(**SMALL_RF, heads=4)
    extra = set(plus.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("decoder.up.2.attn.") for k in extra)  # the 8 px level
    assert set(plain.state_dict()) <= set(plus.state_dict())


def test_the_stage_one_vqgan_reconstructs_through_its_nearest_codes():
    torch.manual_seed(0)
    vq = VQAutoEncoder(img_size=32, nf=32, ch_mult=(1, 1), codebook_size=16, emb_dim=32).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        y = vq(x)
        z, _ = vq.encoder(x)
        _, idx, d = vq.quantize(z)
    assert y.shape == x.shape and torch.equal(idx, d.argmin(1)) and idx.shape == (16 * 16,)


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    """Full-size networks with seeded random weights, saved in the release layouts: CodeFormer's
    ``params_ema`` (.pth), RestoreFormer++'s Lightning file (``state_dict``, ``vqvae.``, a ``loss.*`` entry)."""
    d = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    cf = CodeFormer().state_dict()
    official = {}
    for k, v in cf.items():
        k = k.replace(".nin_shortcut.", ".conv_out.")
        parent = k.rsplit(".norm1.", 1)[0]
        if k.startswith(("encoder.blocks.", "generator.blocks.")) and f"{parent}.q.weight" in cf:
            k = k.replace(".norm1.", ".norm.")
        official[k] = v
    torch.save({"params_ema": official}, d / "codeformer.pth")
    rf = {f"vqvae.{k}": v for k, v in RestoreFormer().state_dict().items()}
    torch.save({"state_dict": rf | {"loss.logvar": torch.zeros(())}, "epoch": 1}, d / "last.ckpt")
    return d


@pytest.mark.slow
@pytest.mark.parametrize(("file", "card"), [("codeformer.pth", "codeformer"), ("last.ckpt", "restoreformer++")])
def test_a_release_layout_file_loads_through_the_real_loader_and_restores_a_photo(official_files, file, card, capsys):
    import numpy as np
    from PIL import Image

    from gfr_core import FaceRestorer, load_model
    from gfr_core.hub.loading import _guess_card, load_checkpoint
    from gfr_core.tools.cli import main

    path = official_files / file
    assert _guess_card(load_checkpoint(path)).name == card  # the layout alone names the model
    net = load_model(path)
    assert type(net).__name__ == ("CodeFormer" if card == "codeformer" else "RestoreFormer")
    photo = ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg"
    small = official_files / f"{card}-photo.png"
    Image.open(photo).resize((205, 256)).save(small)
    out = official_files / f"out-{card}"
    extra = ["--w", "0.7"] if card == "codeformer" else []
    assert main(["restore", str(small), "-o", str(out), "--model", str(path), *extra]) == 0, capsys.readouterr().err
    restored = np.asarray(Image.open(out / small.name))
    assert restored.shape == (512, 410, 3)
    r = FaceRestorer.from_pretrained(str(path))
    assert r.face_size == 512 and r.composition.trust == 1.0  # an official-layout file is trusted as released
    if card != "codeformer":
        with pytest.raises(ValueError, match="w is CodeFormer's fidelity weight"):
            r(np.asarray(Image.open(small)), w=0.5)


def test_inpainting_fills_only_the_white_and_both_modes_want_an_aligned_face():
    import numpy as np

    from gfr_core import FaceRestorer

    torch.manual_seed(0)
    net = CodeFormer(**SMALL_CF, connect_list=("32",))
    face = (np.random.default_rng(0).random((64, 64, 3)) * 200).astype(np.uint8)
    face[20:30, 10:50] = 255  # what the user painted white
    inpaint = FaceRestorer(net, face_size=64, mode="inpaint", name="codeformer-inpainting")
    out = inpaint.restore_faces(face[None])[0]
    hole = np.zeros((64, 64), bool)
    hole[20:30, 10:50] = True
    assert np.array_equal(out[~hole], face[~hole]) and not np.array_equal(out[hole], face[hole])
    for mode, what in (("inpaint", "fills an aligned face"), ("colorize", "colours an aligned grayscale face")):
        r = FaceRestorer(net, face_size=64, mode=mode, name=f"codeformer-{mode}")
        with pytest.raises(ValueError, match=f"{what}, not a whole photo: .*--aligned"):
            r(np.zeros((100, 100, 3), np.uint8))
        with pytest.raises(ValueError, match="runs at its own w"):
            r(face, aligned=True, w=0.3)
    assert FaceRestorer(net, face_size=64, mode="colorize")(face, aligned=True, upscale=1).image.shape == (64, 64, 3)
