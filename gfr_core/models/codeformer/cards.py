"""Released CodeFormer checkpoints: GitHub release assets of sczhou/CodeFormer (v0.1.0). No digest is
published upstream: each file's sha256 is recorded at its first download, then enforced."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS", "PAPER"]

PAPER = "Zhou, Chan, Li, Loy. Towards Robust Blind Face Restoration with Codebook Lookup Transformer. NeurIPS 2022"
_RELEASE = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0"
_LICENSE = "S-Lab License 1.0, non-commercial use only (sczhou/CodeFormer: code and weights); trained on FFHQ"
_TO_128 = ("32", "64", "128")

CARDS = (
    ModelCard(
        name="codeformer",
        arch="codeformer",
        config=dict(connect_list=("32", "64", "128", "256")),
        task="restore",
        filename="codeformer.pth",
        urls=(f"{_RELEASE}/codeformer.pth",),
        converter="codeformer",
        license=_LICENSE,
        paper=PAPER,
        description="CodeFormer: a transformer picks codebook entries; w trades quality (0) for fidelity (1)",
        extras=dict(mode="restore"),
    ),
    ModelCard(
        name="codeformer-colorization",
        arch="codeformer",
        config=dict(connect_list=_TO_128),
        task="restore",
        filename="codeformer_colorization.pth",
        urls=(f"{_RELEASE}/codeformer_colorization.pth",),
        converter="codeformer",
        license=_LICENSE,
        paper=PAPER,
        description="CodeFormer colourisation of an aligned grayscale face (w = 0)",
        extras=dict(mode="colorize"),
    ),
    ModelCard(
        name="codeformer-inpainting",
        arch="codeformer",
        config=dict(codebook_size=512, connect_list=_TO_128),
        task="restore",
        filename="codeformer_inpainting.pth",
        urls=(f"{_RELEASE}/codeformer_inpainting.pth",),
        converter="codeformer",
        license=_LICENSE,
        paper=PAPER,
        description="CodeFormer inpainting: fills what is painted pure white on an aligned face (w = 1)",
        extras=dict(mode="inpaint"),
    ),
)
