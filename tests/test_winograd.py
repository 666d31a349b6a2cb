"""Winograd F(4,3) convolution: the same numbers as the direct convolution, wherever it is switched on."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from gfr_core.models import GFPGAN
from gfr_core.nn import ConvLayer, ModulatedConv2d, conv3x3_winograd, winograd_filter, winograd_pays
from gfr_core.restore import InferenceSettings, optimize_for_inference


@pytest.mark.parametrize("shape", [(2, 5, 8, 8), (1, 3, 7, 10), (3, 16, 1, 1), (1, 4, 13, 4)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_direct_conv(shape, channels_last):
    """Any size (tiles cropped at odd edges), any memory format, with and without bias."""
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, shape[1], 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    for bias in (None, b):
        got = conv3x3_winograd(x, winograd_filter(w), bias)
        assert got.shape == (shape[0], 6, *shape[2:])
        torch.testing.assert_close(got, F.conv2d(x, w, bias, padding=1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rows", [1, 3])
def test_tile_rows_in_chunks_match_direct_conv(rows):
    """Tiles processed a few rows at a time (the last chunk shorter, edge tiles cropped): the same output."""
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(2, 5, 13, 10, generator=g, dtype=torch.float64)  # 4 x 3 tiles of 4x4 per image
    w, b = torch.randn(7, 5, 3, 3, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    row_bytes = 36 * 2 * 3 * 5 * x.element_size()  # one row of tile transforms of both images
    got = conv3x3_winograd(x, winograd_filter(w), b, chunk_bytes=rows * row_bytes)
    torch.testing.assert_close(got, F.conv2d(x, w, b, padding=1), rtol=1e-10, atol=1e-10)


def test_which_layers_pay():
    """The measured rule: >= 128 input and output channels, maps of at least 8 px, any size above."""
    assert winograd_pays(512, 256, (1, 512, 128, 128)) and winograd_pays(128, 128, (1, 128, 256, 256))
    assert not winograd_pays(128, 64) and not winograd_pays(64, 64)
    assert not winograd_pays(512, 512, (1, 512, 4, 4))


def test_fp32_error_is_rounding_only():
    """fp32 at a realistic width: the error stays at the 1e-5 scale of float rounding, not a wrong tap."""
    torch.manual_seed(0)
    x, w = torch.randn(1, 256, 24, 24), torch.randn(128, 256, 3, 3) / 48
    err = (conv3x3_winograd(x, winograd_filter(w)) - F.conv2d(x, w, padding=1)).abs().max()
    assert err < 1e-4
    # a mirrored filter (a convolution instead of a correlation) is far above that
    assert (conv3x3_winograd(x, winograd_filter(w.flip(-1))) - F.conv2d(x, w, padding=1)).abs().max() > 0.1


def test_filter_transform_shape_and_identity():
    """A centre-tap identity filter passes x through unchanged."""
    w = torch.zeros(2, 2, 3, 3, dtype=torch.float64)
    w[0, 0, 1, 1] = w[1, 1, 1, 1] = 1.0
    assert winograd_filter(w).shape == (36, 2, 2)
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(conv3x3_winograd(x, winograd_filter(w)), x)


def test_rejects_wrong_filter():
    with pytest.raises(ValueError, match="winograd_filter"):
        conv3x3_winograd(torch.randn(1, 4, 8, 8), torch.randn(2, 4, 3, 3))


def test_optimize_for_inference_switches_only_wide_convs_and_keeps_the_output():
    torch.manual_seed(0)
    model = GFPGAN(out_size=32, num_style_feat=32, channel_multiplier=1, narrow=1, flavour="clean").eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ref = model(x, noise_mode="const", fused=False)
    st = replace(InferenceSettings.for_device("cpu"), winograd=True, reuse_memory=False)
    fast = optimize_for_inference(copy.deepcopy(model), st)
    convs = [m for m in fast.modules() if isinstance(m, (ConvLayer, ModulatedConv2d))]
    on = [m for m in convs if m.winograd_u is not None]
    assert on and len(on) < len(convs)  # this config has both wide and narrow convs
    assert all(winograd_pays(*reversed(m.weight.shape[-4:-2])) and m.weight.shape[-1] == 3 for m in on)
    assert "winograd_u" not in "".join(fast.state_dict())  # not part of the checkpoint
    direct = optimize_for_inference(copy.deepcopy(model), replace(st, winograd=False))
    with torch.inference_mode():
        got = fast(st.prepare_input(x), noise_mode="const", fused=False)
        got_direct = direct(st.prepare_input(x), noise_mode="const", fused=False)
    assert (got - ref).abs().max() < 1e-4
    assert not torch.equal(got, got_direct)  # the Winograd layers really ran (their rounding differs)
    # switched off again by settings without it
    off = optimize_for_inference(fast, replace(st, winograd=False))
    assert not any(m.winograd_u is not None for m in off.modules() if isinstance(m, (ConvLayer, ModulatedConv2d)))
