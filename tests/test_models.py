"""Behaviour of the architectures beyond parity: noise modes, formulations, latents, shapes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from gfr_core.hub import UnmatchedKeysError, convert_state_dict, get_card, register
from gfr_core.models import GFPGAN, GPEN, StyleGAN2Discriminator, StyleGAN2Generator, mix_latents
from gfr_core.nn import ModulatedConv2d


def _tiny_gfpgan(flavour="clean"):
    torch.manual_seed(0)
    return GFPGAN(out_size=32, num_style_feat=16, channel_multiplier=1, narrow=1 / 16, flavour=flavour).eval()


def test_detail_head_starts_as_identity_and_trains():
    """A DetailHead added to trained weights leaves the output unchanged until trained; spatial_strength 0 drops it."""
    base = _tiny_gfpgan()
    assert base.detail is None and not any(k.startswith("detail.") for k in base.state_dict())  # the released layout
    torch.manual_seed(1)
    m = GFPGAN(out_size=32, num_style_feat=16, channel_multiplier=1, narrow=1 / 16, detail_channels=8).eval()
    res = m.load_state_dict(base.state_dict(), strict=False)
    assert res.missing_keys and all(k.startswith("detail.") for k in res.missing_keys) and not res.unexpected_keys
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x), base(x))
    m(x).square().mean().backward()
    assert m.detail.to_rgb.weight.grad.abs().sum() > 0
    with torch.no_grad():
        m.detail.to_rgb.weight.normal_()
        assert (m(x) - base(x)).abs().max() > 1e-3
        assert torch.equal(m(x, spatial_strength=0.0), base(x, spatial_strength=0.0))
        enc = m.encode(x)
        assert enc.features.shape == (2, 16, 32, 32)  # U-Net width at 32 px: 512 * narrow / 2
        assert torch.equal(m.refine(x, m.decode(enc.latents, enc.conditions), enc.features), m(x))

    from gfr_core import analysis as an

    faces = ((x.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    xq = an.from_uint8(faces)  # the memory layout ablation_outputs uses: another one rounds a pixel differently on AVX2
    with torch.no_grad():
        full, latents_only = m(xq), m.decode(m.encode(xq).latents, None)
    assert np.abs(an.to_uint8(full).astype(int) - an.to_uint8(latents_only)).max() > 1  # the two references differ
    assert np.array_equal(an.ablation_outputs(m, faces, "full"), an.to_uint8(full))  # the head is on
    assert np.array_equal(an.ablation_outputs(m, faces, "no_sft"), an.to_uint8(latents_only))  # spatial paths off


def test_context_blocks_start_as_identity_and_see_the_whole_face():
    """Blocks added to a trained head keep its output until trained; then a change far away reaches every pixel."""
    torch.manual_seed(0)
    head = GFPGAN(out_size=32, num_style_feat=16, channel_multiplier=1, narrow=1 / 16, detail_channels=8).eval()
    torch.manual_seed(1)
    m = GFPGAN(
        out_size=32, num_style_feat=16, channel_multiplier=1, narrow=1 / 16, detail_channels=8, detail_blocks=2
    ).eval()
    res = m.load_state_dict(head.state_dict(), strict=False)
    assert sorted({k.split(".")[2] for k in res.missing_keys}) == ["0", "1"] and not res.unexpected_keys
    assert all(k.startswith("detail.blocks.") for k in res.missing_keys)
    with torch.no_grad():
        for p in head.detail.to_rgb.parameters():
            p.normal_()
        m.detail.to_rgb.load_state_dict(head.detail.to_rgb.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x), head(x))
    m(x).square().mean().backward()
    assert all(b.conv_b.weight.grad.abs().sum() > 0 for b in m.detail.blocks)

    # The global context: with the convs' reach cut to one pixel (centre taps only), a change in one corner of
    # the head's input still moves the opposite corner of its output, through the blocks' mean.
    blk = m.detail.blocks[0]
    with torch.no_grad():
        for conv in (blk.conv_a, blk.conv_b):
            conv.weight.normal_(std=0.3)
            conv.weight[..., [0, 0, 2, 2], [0, 2, 0, 2]] = 0
            conv.weight[..., [0, 1, 1, 2], [1, 0, 2, 1]] = 0
        h = torch.randn(1, 8, 32, 32)
        h2 = h.clone()
        h2[..., :4, :4] += 1
        a, b = blk(h), blk(h2)
        assert (a - b)[..., -4:, -4:].abs().max() > 1e-4
        blk.ctx.weight.zero_()  # without the context the far corner does not move
        assert torch.equal(blk(h)[..., -4:, -4:], blk(h2)[..., -4:, -4:])


@pytest.mark.parametrize("flavour", ["clean", "original"])
@pytest.mark.parametrize("up,demod", [(False, True), (True, True), (False, False)])
def test_fused_and_unfused_modconv_agree(flavour, up, demod):
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 6, 3 if demod else 1, style_dim=5, up=up, demodulate=demod, flavour=flavour)
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 5)
    a, b = conv(x, w, fused=True), conv(x, w, fused=False)
    assert a.shape == b.shape == (3, 6, 16 if up else 8, 16 if up else 8)
    assert (a - b).abs().max() < 1e-4


@pytest.mark.parametrize("flavour", ["clean", "original"])
def test_noise_modes(flavour):
    g = StyleGAN2Generator(size=16, style_dim=8, channel_multiplier=1, narrow=1 / 16, flavour=flavour).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        c1, _ = g(z, noise_mode="const")
        c2, _ = g(z, noise_mode="const")
        r1, _ = g(z, noise_mode="random")
        r2, _ = g(z, noise_mode="random")
        n, _ = g(z, noise_mode="none")
    for p in g.parameters():
        if p.shape == (1,):
            p.data.fill_(0.5)  # noise strengths
    assert torch.equal(c1, c2)
    with torch.no_grad():
        assert not torch.equal(*[g(z, noise_mode="random")[0] for _ in range(2)])
        assert not torch.equal(g(z, noise_mode="none")[0], g(z, noise_mode="const")[0])
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, noise_mode="sometimes")  # type: ignore[arg-type]
    assert c1.shape == r1.shape == n.shape == (2, 3, 16, 16)


def test_truncation_and_latents():
    g = StyleGAN2Generator(size=16, style_dim=8, narrow=1 / 16).eval()
    g.update_w_avg(num_samples=256)
    z = torch.randn(4, 8)
    with torch.no_grad():
        _, ws = g(z, return_latents=True)
        _, ws0 = g(z, truncation_psi=0.0, return_latents=True)
    assert ws.shape == (4, g.num_ws, 8)
    assert torch.allclose(ws0, g.w_avg.expand_as(ws0))
    mixed = mix_latents(ws[:1], ws[1:2], 3)
    assert torch.equal(mixed[0, :3], ws[0, :3]) and torch.equal(mixed[0, 3:], ws[1, 3:])
    with pytest.raises(ValueError, match="input_is_latent"):
        g(ws)


def test_gfpgan_encode_exposes_latents_and_conditions():
    m = _tiny_gfpgan()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        latents, conds, rgbs, _ = m.encode(x, return_rgb=True)
        out = m(x)
        again = m.decode(latents, conds)
        no_sft = m.decode(latents, None)
    assert latents.shape == (2, m.num_ws, 16)
    assert [c[0].shape[-1] for c in conds] == [8, 16, 32]
    assert [r.shape[-1] for r in rgbs] == [8, 16, 32]
    assert torch.equal(out, again) and out.shape == (2, 3, 32, 32)
    assert not torch.allclose(out, no_sft)


def test_gpen_shapes_and_determinism():
    torch.manual_seed(0)
    m = GPEN(size=32, style_dim=16, channel_multiplier=1, narrow=1 / 16).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x), m(x))
        assert m(x).shape == (1, 3, 32, 32)


def test_discriminator_shapes_and_grad():
    d = StyleGAN2Discriminator(size=32, narrow=1 / 16)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    y = d(x)
    assert y.shape == (4, 1)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_converter_refuses_foreign_checkpoints():
    gpen_sd = GPEN(size=32, style_dim=16, channel_multiplier=1, narrow=1 / 16).state_dict()
    with pytest.raises(UnmatchedKeysError, match="cannot place"):
        convert_state_dict(get_card("gfpgan-v1.4"), gpen_sd)
    with pytest.raises(ValueError, match="has no converter 'nope'"):
        register(dataclasses.replace(get_card("gfpgan-v1.4"), name="bad-converter", converter="nope"))


def test_embedded_weights_rewritten_with_config_and_w_avg_give_the_same_outputs():
    """The shipped files were rewritten (config in the metadata, w_avg a buffer); their outputs are those of
    the files before (reference made with gfr_core at commit 67be93f, tests/fixtures/embedded)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from gfr_core import load_model
    from gfr_core.hub import resolve_file

    ref = load_file(str(Path(__file__).parent / "fixtures" / "embedded" / "embedded_outputs_67be93f.safetensors"))
    with torch.no_grad():
        for name in ("embedded", "embedded-noprior"):
            m = load_model(name)
            # the same weights give the same outputs up to float rounding, which varies with the CPU's kernels
            # (AVX-512 FP16 / AMX ones differ by ~3e-7); a changed weight or w_avg moves them by far more
            torch.testing.assert_close(
                m(ref["input"]), ref[f"{name}.output"], rtol=0, atol=1e-5, msg=lambda s: f"{name}: {s}"
            )
            with safe_open(str(resolve_file(get_card(name))), "pt") as f:
                assert "stylegan_decoder.w_avg" in f.keys() and "_w_avg" not in f.keys()
        g = load_model("embedded-prior")
        torch.testing.assert_close(g(ref["z"], noise_mode="const")[0], ref["embedded-prior.output"], rtol=0, atol=1e-5)
        assert torch.equal(g.w_avg, ref["embedded-prior.w_avg"])  # now a buffer in the file, not a side tensor
    assert g.config.size == 64 and m.config.out_size == 64


def test_a_model_carries_its_frozen_config_and_rebuilds_from_it(tmp_path):
    from gfr_core import load_model, save_checkpoint
    from gfr_core.models import GFPGANConfig

    model = GFPGAN(out_size=32, num_style_feat=16, channel_multiplier=1, narrow=1 / 16, detail_channels=4)
    assert isinstance(model.config, GFPGANConfig) and model.config.detail_channels == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.config.out_size = 64  # type: ignore[misc]
    again = load_model(save_checkpoint(tmp_path / "m.safetensors", model))
    assert again.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ValueError, match="out_size=48 .*power of two"):
        GFPGANConfig(out_size=48)
