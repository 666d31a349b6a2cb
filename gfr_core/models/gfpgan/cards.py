"""Released GFPGAN checkpoints. The official files are GitHub release assets of TencentARC/GFPGAN; the Hub
copies are mirrors. Pinned digests and sizes are those of the GitHub release assets (v1.3.0 / v1.3.4), as
published by several independent downloaders; a mirror must serve the same bytes."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS", "PAPER"]

PAPER = "Wang, Li, Zhang, Shan. Towards Real-World Blind Face Restoration with Generative Facial Prior. CVPR 2021"
_REPO = "gmk123/GFPGAN"  # community mirror of the TencentARC/GFPGAN release files
_CLEAN = dict(out_size=512, num_style_feat=512, channel_multiplier=2, narrow=1.0, sft_half=True, flavour="clean")
_LICENSE = "Apache-2.0 (TencentARC/GFPGAN); trained on FFHQ (CC BY-NC-SA 4.0)"

CARDS = (
    ModelCard(
        name="gfpgan-v1.4",
        arch="gfpgan",
        config=_CLEAN,
        task="restore",
        repo_id=_REPO,
        filename="GFPGANv1.4.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.4/GFPGANv1.4.pth",),
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        size_bytes=348_632_874,
        converter="gfpgan_clean",
        license=_LICENSE,
        paper=PAPER,
        description="GFPGAN v1.4 (clean arch): more details and better identity than v1.3",
    ),
    ModelCard(
        name="gfpgan-v1.3",
        arch="gfpgan",
        config=_CLEAN,
        task="restore",
        repo_id=_REPO,
        filename="GFPGANv1.3.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.3.pth",),
        sha256="c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70",
        size_bytes=348_632_874,
        converter="gfpgan_clean",
        license=_LICENSE,
        paper=PAPER,
        description="GFPGAN v1.3 (clean arch): natural results, handles high-quality inputs",
    ),
    ModelCard(
        name="gfpgan-v1.2",
        arch="gfpgan",
        config=_CLEAN,
        task="restore",
        repo_id=_REPO,
        filename="GFPGANCleanv1-NoCE-C2.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v0.2.0/GFPGANCleanv1-NoCE-C2.pth",),
        converter="gfpgan_clean",
        license=_LICENSE,
        paper=PAPER,
        description="GFPGAN v1.2 (clean arch, no colorization): sharper, with a make-up look",
    ),
    ModelCard(
        name="gfpgan-v1",
        arch="gfpgan",
        config=dict(
            out_size=512, num_style_feat=512, channel_multiplier=1, narrow=1.0, sft_half=True, flavour="original"
        ),
        task="restore",
        repo_id=_REPO,
        filename="GFPGANv1.pth",
        urls=("https://github.com/TencentARC/GFPGAN/releases/download/v0.1.0/GFPGANv1.pth",),
        converter="gfpgan_original",
        license="Apache-2.0 code with StyleGAN2 parts under the NVIDIA Source Code License; FFHQ (CC BY-NC-SA 4.0)",
        paper=PAPER,
        description="GFPGAN v1, the paper model (original StyleGAN2 arch, colorizes)",
    ),
)
