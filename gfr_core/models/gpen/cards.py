"""Released GPEN blind-face-restoration checkpoints."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS", "PAPER"]

PAPER = "Yang, Ren, Xie, Zhang. GAN Prior Embedded Network for Blind Face Restoration in the Wild. CVPR 2021"
_OSS = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"  # the GPEN authors' public object storage (linked from the yangxy/GPEN README)
_LICENSE = "GPEN: non-commercial research use (yangxy/GPEN); FFHQ (CC BY-NC-SA 4.0)"

CARDS = (
    ModelCard(
        name="gpen-bfr-512",
        arch="gpen",
        config=dict(size=512, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=1.0),
        task="restore",
        repo_id="akhaliq/GPEN-BFR-512",
        filename="GPEN-BFR-512.pth",
        urls=(f"{_OSS}/GPEN-BFR-512.pth",),
        # no digest is published upstream; two independent public downloaders observed this one
        sha256="f1002c41add95b0decad69604d80455576f7187dd99ca16bd611bcfd44c10b51",
        size_bytes=284_085_738,
        converter="gpen",
        license=_LICENSE,
        paper=PAPER,
        description="GPEN blind face restoration, 512 px",
    ),
    ModelCard(
        name="gpen-bfr-256",
        arch="gpen",
        config=dict(size=256, style_dim=512, n_mlp=8, channel_multiplier=1, narrow=0.5),
        task="restore",
        filename="GPEN-BFR-256.pth",  # no Hub copy known
        urls=(f"{_OSS}/GPEN-BFR-256.pth",),
        converter="gpen",
        license=_LICENSE,
        paper=PAPER,
        description="GPEN blind face restoration, 256 px (narrow 0.5)",
    ),
)
