"""Degradations: each operation does what it says, and the same seed gives the same image."""

from __future__ import annotations

import numpy as np
import pytest

from gfr_core import degrade as dg
from helpers import smooth_photo


def _img(seed=0):
    rng = np.random.default_rng(seed)
    base = smooth_photo(64, 64, seed).astype(np.int16)
    return np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)  # some texture


def _hf_energy(img):
    g = img.astype(float).mean(2)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def test_gaussian_blur_smooths_and_kernel_is_normalised():
    k = dg.gaussian_kernel(21, 3.0, 1.0, 0.5)
    assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-5
    assert np.allclose(k, k[::-1, ::-1], atol=1e-7)  # point symmetric
    img = _img()
    assert _hf_energy(dg.gaussian_blur(img, 2.0)) < 0.5 * _hf_energy(img)


def test_anisotropic_blur_is_directional():
    img = _img()
    horiz = dg.gaussian_blur(img, 4.0, 0.3, 0.0).astype(float).mean(2)
    dx, dy = np.abs(np.diff(horiz, axis=1)).mean(), np.abs(np.diff(horiz, axis=0)).mean()
    assert dx < 0.5 * dy


def test_random_blur_scales_with_resolution():
    rng = np.random.default_rng(0)
    big, small = _img(), _img()[::2, ::2]
    p = dg.DegradationPreset(blur_sigma=(6.0, 6.0), aniso_prob=0.0)
    # sigma 6 px with a 41 px kernel at 512 px is sigma 0.75 px with a 5 px kernel at 64 px, 0.375 / 3 px at 32
    assert np.array_equal(dg.random_blur(big, rng, p), dg.gaussian_blur(big, 0.75, 0.75, 0.0, size=5))
    assert np.array_equal(dg.random_blur(small, rng, p), dg.gaussian_blur(small, 0.375, 0.375, 0.0, size=3))


def test_downsample_noise_jpeg_color_gray():
    img = _img()
    assert dg.downsample(img, 4.0).shape == (16, 16, 3)
    assert dg.downsample(img, 100.0).shape == (2, 2, 3)
    rng = np.random.default_rng(0)
    noisy = dg.add_gaussian_noise(img, 10.0, rng)
    assert 5 < np.abs(noisy.astype(int) - img).mean() < 12
    gray_noise = dg.add_gaussian_noise(np.full_like(img, 128), 10.0, rng, gray=True)
    assert np.array_equal(gray_noise[..., 0], gray_noise[..., 1])
    q10, q95 = dg.jpeg(img, 10), dg.jpeg(img, 95)
    assert np.abs(q10.astype(int) - img).mean() > np.abs(q95.astype(int) - img).mean()
    shifted = dg.color_jitter(np.full((4, 4, 3), 100, np.uint8), rng, 20)
    assert np.abs(shifted.astype(int) - 100).max() <= 20 and len(np.unique(shifted[0, 0])) > 1
    g = dg.to_gray(img)
    assert np.array_equal(g[..., 0], g[..., 2])


@pytest.mark.parametrize("preset", sorted(dg.PRESETS))
def test_degrade_is_deterministic_per_seed(preset):
    img = _img()
    a = dg.degrade(img, np.random.default_rng(7), preset)
    b = dg.degrade(img, np.random.default_rng(7), preset)
    c = dg.degrade(img, np.random.default_rng(8), preset)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_severe_is_worse_than_mild():
    img = _img()
    err = {
        p: np.mean([np.abs(dg.degrade(img, np.random.default_rng(s), p).astype(int) - img).mean() for s in range(5)])
        for p in ("mild", "severe")
    }
    assert err["severe"] > err["mild"]
