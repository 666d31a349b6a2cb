"""CPU smoke runs of the training loops: finite losses, weights that change, resumable state."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gfr_core import FaceRestorer, load_model
from gfr_core.training import PriorConfig, RestorerConfig, export_resume_state, psnr_loss, train_prior, train_restorer
from gfr_core.training.export import _command_for
from helpers import smooth_photo


@pytest.fixture(scope="module")
def aligned_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    for i in range(8):
        Image.fromarray(smooth_photo(48, 48, seed=i)).save(d / f"f{i}.png")
    return d


# A 16 px restorer for the runs without a prior (use_prior=False), where no prior gives the architecture.
_TINY_GFPGAN = dict(
    out_size=16, num_style_feat=16, channel_multiplier=1, narrow=1 / 32, sft_half=True, flavour="clean", num_mlp=2
)


def _tiny_prior(data, out, steps):
    return PriorConfig(
        data=str(data),
        out=str(out),
        size=16,
        style_dim=16,
        n_mlp=2,
        narrow=1 / 32,
        batch=4,
        steps=steps,
        prealigned=True,
        sample_every=2,
        ckpt_every=2,
        device="cpu",
    )


def test_prior_smoke_resume_and_restorer(aligned_folder, tmp_path):
    torch.manual_seed(0)
    path = train_prior(_tiny_prior(aligned_folder, tmp_path / "prior", 2))
    g0 = load_model(path)
    rec = json.loads((tmp_path / "prior" / "training.json").read_text())
    assert rec["step"] == 2 and all(np.isfinite(v) for v in rec["last_losses"].values())
    assert (tmp_path / "prior" / "samples-latest.png").is_file()
    path = train_prior(_tiny_prior(aligned_folder, tmp_path / "prior", 4))  # resumes from step 2
    assert json.loads((tmp_path / "prior" / "training.json").read_text())["step"] == 4
    g1 = load_model(path)
    changed = [k for k, v in g0.state_dict().items() if not torch.equal(v, g1.state_dict()[k])]
    assert any("conv.weight" in k for k in changed), "training did not change the generator"
    assert not torch.equal(g0.w_avg, torch.zeros_like(g0.w_avg))

    rcfg = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "rest"),
        prior=str(path),
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
    )
    rpath = train_restorer(rcfg)
    rec = json.loads((tmp_path / "rest" / "training.json").read_text())
    assert rec["step"] == 2 and all(np.isfinite(v) for v in rec["last_losses"].values())
    restorer = FaceRestorer.from_pretrained(str(rpath))
    assert restorer.face_size == 16 and restorer.crop_zoom == pytest.approx(1.3)  # from the file's own card
    with pytest.raises(ValueError, match="not a face restorer"):
        FaceRestorer.from_pretrained(str(path))  # the prior checkpoint
    # the decoder is the frozen prior
    dec = restorer.model.stylegan_decoder.state_dict()
    assert all(torch.equal(dec[k], v) for k, v in g1.state_dict().items())
    out = restorer.restore_faces(np.zeros((1, 16, 16, 3), np.uint8))
    assert out.shape == (1, 16, 16, 3)

    # A PSNR fine-tuning chunk on top: no discriminator, annealed learning rate, EMA weights exported.
    st0 = torch.load(tmp_path / "rest" / "state.pt", weights_only=True)
    rpath = train_restorer(dataclasses.replace(rcfg, steps=4, w_adv=0.0, w_fm=0.0, anneal=True, lr=1e-3, ema_beta=0.5))
    st = torch.load(tmp_path / "rest" / "state.pt", weights_only=True)
    rec = json.loads((tmp_path / "rest" / "training.json").read_text())
    assert st["step"] == 4 and set(rec["last_losses"]) == {"l1", "pyramid"}
    assert all(torch.equal(st0["D"][k], v) for k, v in st["D"].items()), (
        "the discriminator trained with zero GAN weights"
    )
    assert any(not torch.equal(st0["R"][k], v) for k, v in st["R"].items())
    exported = load_model(rpath).state_dict()
    assert all(torch.equal(exported[k], v) for k, v in st["R_ema"].items())
    assert any(not torch.equal(st["R"][k], v) for k, v in st["R_ema"].items()), "the EMA is a copy of the raw weights"

    # A compact (bfloat16) resume state resumes: copied into a fresh run folder, training goes on from step 4.
    small = export_resume_state(tmp_path / "rest", tmp_path / "resume" / "rest-state.pt")
    assert small.stat().st_size < 0.7 * (tmp_path / "rest" / "state.pt").stat().st_size
    (tmp_path / "rest2").mkdir()
    shutil.copyfile(small, tmp_path / "rest2" / "state.pt")
    train_restorer(dataclasses.replace(rcfg, out=str(tmp_path / "rest2"), steps=5, w_adv=0.0, w_fm=0.0, batch=2))
    st2 = torch.load(tmp_path / "rest2" / "state.pt", weights_only=True)
    assert st2["step"] == 5 and all(v.dtype == torch.float32 for v in st2["R"].values() if v.is_floating_point())
    rec = json.loads((tmp_path / "rest2" / "training.json").read_text())
    assert rec["images_seen"] == 4 * 4 + 1 * 2  # counted per chunk's batch, not step x the last batch
    cmd = _command_for("embedded", rec)
    assert "--w-adv 0.0" in cmd and "--steps 5" in cmd and "--batch 2" in cmd and "--lr" not in cmd


def test_restorer_init_adds_a_detail_head(aligned_folder, tmp_path):
    """--init copies a head-less restorer into a run with a DetailHead: same output at step 0, then the head trains."""
    torch.manual_seed(0)
    prior = train_prior(_tiny_prior(aligned_folder, tmp_path / "prior", 1))
    base = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "r0"),
        prior=str(prior),
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
        w_adv=0.0,
        w_fm=0.0,
        detail_channels=0,
    )
    src = train_restorer(base)
    with pytest.raises(ValueError, match="DetailHead"):  # resuming that state with another architecture
        train_restorer(dataclasses.replace(base, detail_channels=8, steps=3))
    cfg = dataclasses.replace(base, out=str(tmp_path / "r1"), detail_channels=8, init=str(src), steps=0)
    faces = (np.random.default_rng(0).random((2, 16, 16, 3)) * 255).astype(np.uint8)
    r_src = FaceRestorer.from_pretrained(str(src))
    r_init = FaceRestorer.from_pretrained(str(train_restorer(cfg)))
    assert r_src.model.detail is None and r_init.model.detail is not None
    assert np.array_equal(r_src.restore_faces(faces), r_init.restore_faces(faces))
    with pytest.raises(ValueError, match="DetailHead with 0 blocks"):  # resuming it with ContextBlocks added
        train_restorer(dataclasses.replace(cfg, detail_blocks=1, steps=1))
    trained = load_model(train_restorer(dataclasses.replace(cfg, steps=2, ema_beta=0.0))).state_dict()
    assert not torch.equal(trained["detail.to_rgb.weight"], torch.zeros_like(trained["detail.to_rgb.weight"]))
    with pytest.raises(ValueError, match="not a GFPGAN-style restorer"):
        train_restorer(dataclasses.replace(cfg, out=str(tmp_path / "r2"), init=str(prior)))
    with pytest.raises(ValueError, match="layer shapes differ"):  # a head of 8 channels into one of 4
        train_restorer(
            dataclasses.replace(
                cfg, out=str(tmp_path / "r3"), init=str(tmp_path / "r1" / "restorer.safetensors"), detail_channels=4
            )
        )


def test_trainable_detail_trains_only_the_head(aligned_folder, tmp_path):
    """trainable='detail' (blocks added with --init): only DetailHead weights move; its state resumes only that way."""
    torch.manual_seed(0)
    prior = train_prior(_tiny_prior(aligned_folder, tmp_path / "prior", 1))
    base = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "r0"),
        prior=str(prior),
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
        w_adv=0.0,
        w_fm=0.0,
        detail_channels=8,
        detail_blocks=1,
        ema_beta=0.0,
    )
    src = load_model(train_restorer(base)).state_dict()
    cfg = dataclasses.replace(
        base,
        out=str(tmp_path / "r1"),
        init=str(tmp_path / "r0" / "restorer.safetensors"),
        detail_blocks=2,
        trainable="detail",
        w_l1=0.0,
        w_psnr=0.025,
        lr=1e-2,
    )
    after = load_model(train_restorer(cfg)).state_dict()
    rec = json.loads((tmp_path / "r1" / "training.json").read_text())
    assert rec["step"] == 2 and set(rec["last_losses"]) == {"l1", "psnr"}, rec  # no pyramid loss: the U-Net is frozen
    moved = {k for k, v in after.items() if k not in src or not torch.equal(src[k], v)}
    assert moved and all(k.startswith("detail.") for k in moved), sorted(moved)[:5]
    assert any(k.startswith("detail.blocks.1.") and "conv_b" in k for k in moved)  # the added block trained from zero
    assert any(k.startswith("detail.blocks.0.") for k in moved)  # and so did the copied one
    with pytest.raises(ValueError, match="trainable='detail'"):  # its optimizer state covers only the head
        train_restorer(dataclasses.replace(cfg, trainable="all", steps=3))
    assert (
        load_model(train_restorer(dataclasses.replace(cfg, steps=3))).state_dict().keys() == after.keys()
    )  # resumes the same way
    with pytest.raises(ValueError, match="trainable must be one of"):
        train_restorer(dataclasses.replace(cfg, trainable="encoder"))
    with pytest.raises(ValueError, match="needs a DetailHead"):
        train_restorer(dataclasses.replace(cfg, out=str(tmp_path / "r2"), detail_channels=0, detail_blocks=0))


def test_no_prior_ablation_trains_its_decoder(aligned_folder, tmp_path):
    arch = _TINY_GFPGAN
    cfg = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "np"),
        prior=None,
        use_prior=False,
        arch=arch,
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
    )
    torch.manual_seed(0)
    from gfr_core import GFPGAN

    before = GFPGAN(**arch).stylegan_decoder.state_dict()
    after = load_model(train_restorer(cfg)).stylegan_decoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("conv.weight"))


def test_psnr_loss_is_minus_the_mean_per_image_psnr(aligned_folder, tmp_path):
    from gfr_core.io import from_uint8
    from gfr_core.metrics import psnr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    b = np.clip(
        a.astype(int) + rng.integers(-40, 41, a.shape) * (np.arange(3)[:, None, None, None] + 1), 0, 255
    ).astype(np.uint8)
    mean_psnr = np.mean([psnr(x, y) for x, y in zip(a, b)])  # three noise levels: not the PSNR of the mean MSE
    assert abs(mean_psnr - (-10 * np.log10(np.mean((a.astype(float) - b) ** 2) / 255**2))) > 0.5
    got = float(psnr_loss(from_uint8(a), from_uint8(b)))
    assert got == pytest.approx(10 * np.log10(4.0) - mean_psnr, abs=1e-3)  # peak-to-peak 2 in [-1,1]
    arch = _TINY_GFPGAN
    cfg = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "p"),
        prior=None,
        use_prior=False,
        arch=arch,
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
        w_l1=0.0,
        w_psnr=0.02,
        w_adv=0.0,
        w_fm=0.0,
    )
    train_restorer(cfg)
    rec = json.loads((tmp_path / "p" / "training.json").read_text())
    assert rec["step"] == 2 and np.isfinite(rec["last_losses"]["psnr"]) and rec["config"]["w_psnr"] == 0.02, rec


def test_bf16_training_on_cpu(aligned_folder, tmp_path):
    """precision='bf16' autocasts the CPU training steps (AMX / AVX-512-BF16); losses stay finite, weights move."""
    from gfr_core.training.common import autocast as _autocast

    assert (
        _autocast(torch.device("cpu"), "bf16").fast_dtype == torch.bfloat16
        and _autocast(torch.device("cpu"), "bf16")._enabled
    )
    assert not _autocast(torch.device("cpu"), "auto")._enabled and not _autocast(torch.device("cpu"), "fp32")._enabled
    with pytest.raises(ValueError, match="precision"):
        train_prior(dataclasses.replace(_tiny_prior(aligned_folder, tmp_path / "bad", 1), precision="fp16"))
    torch.manual_seed(0)
    path = train_prior(dataclasses.replace(_tiny_prior(aligned_folder, tmp_path / "prior", 2), precision="bf16"))
    rec = json.loads((tmp_path / "prior" / "training.json").read_text())
    assert rec["step"] == 2 and all(np.isfinite(v) for v in rec["last_losses"].values()), rec
    rcfg = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "rest"),
        prior=str(path),
        batch=4,
        steps=2,
        prealigned=True,
        device="cpu",
        precision="bf16",
        ema_beta=0.0,
    )
    before = FaceRestorer.from_pretrained(str(train_restorer(dataclasses.replace(rcfg, steps=0)))).model.state_dict()
    after = FaceRestorer.from_pretrained(str(train_restorer(rcfg))).model.state_dict()
    rec = json.loads((tmp_path / "rest" / "training.json").read_text())
    assert rec["step"] == 2 and all(np.isfinite(v) for v in rec["last_losses"].values()), rec
    assert any(not torch.equal(v, after[k]) for k, v in before.items() if not k.startswith("stylegan_decoder."))
    assert all(after[k].dtype == torch.float32 for k in after)  # autocast: the weights themselves stay fp32


def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch, caplog):
    """Emulated bf16 (no AVX-512-BF16, no AMX) is slower than fp32: asking for it says so; native bf16 is quiet."""
    import platform

    from gfr_core.training.common import autocast as _autocast

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    for native, warns in ((False, True), (True, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        caplog.clear()
        with caplog.at_level("WARNING", logger="gfr_core.training.common"):
            assert _autocast(torch.device("cpu"), "bf16")._enabled
            _autocast(torch.device("cpu"), "fp32")  # fp32 never warns
        assert any("--precision fp32" in r.getMessage() for r in caplog.records) == warns, caplog.text


def _signal_on_call(n: int, sig: int, fn):
    """Wrap ``fn`` so that its n-th call first sends ``sig`` to this process (mid training step)."""
    import signal

    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            signal.raise_signal(sig)
        return fn(*args, **kwargs)

    return wrapped


def test_a_signal_stops_training_after_the_step_and_saves(aligned_folder, tmp_path, monkeypatch):
    """SIGTERM (restorer) or Ctrl-C (prior) in step 3: that step finishes, the state of step 3 is saved and
    resumable, and the process's own handlers are back afterwards."""
    import signal

    from gfr_core.training import losses, prior

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(losses, "psnr_loss", _signal_on_call(3, signal.SIGTERM, losses.psnr_loss))
    cfg = RestorerConfig(
        data=str(aligned_folder),
        out=str(tmp_path / "r"),
        prior=None,
        use_prior=False,
        arch=_TINY_GFPGAN,
        batch=4,
        steps=1000,
        ckpt_every=1000,
        prealigned=True,
        device="cpu",
        w_l1=0.0,
        w_psnr=0.02,
        w_adv=0.0,
        w_fm=0.0,
    )
    train_restorer(cfg)
    assert json.loads((tmp_path / "r" / "training.json").read_text())["step"] == 3
    assert torch.load(tmp_path / "r" / "state.pt", weights_only=True)["step"] == 3
    assert {s: signal.getsignal(s) for s in handlers} == handlers

    monkeypatch.setattr(prior, "ema", _signal_on_call(3, signal.SIGINT, prior.ema))
    train_prior(
        dataclasses.replace(_tiny_prior(aligned_folder, tmp_path / "p", 1000), ckpt_every=1000, sample_every=1000)
    )
    assert json.loads((tmp_path / "p" / "training.json").read_text())["step"] == 3
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    train_prior(_tiny_prior(aligned_folder, tmp_path / "p", 5))  # resumes from the saved step 3
    assert json.loads((tmp_path / "p" / "training.json").read_text())["step"] == 5


def test_train_export_writes_into_the_packages_weights_folder_by_default():
    """It pointed at gfr_core/tools/weights since the CLI moved into tools/ (no such folder)."""
    from pathlib import Path

    from gfr_core.tools.cli import _build_parser

    args = _build_parser().parse_args(["train", "export", "--prior", "p", "--restorer", "r"])
    assert (Path(args.weights_dir) / "embedded.safetensors").is_file()
