"""Released RestoreFormer checkpoints: GitHub release assets of wzhouxiff/RestoreFormerPlusPlus (v1.0.0),
PyTorch Lightning files. No digest is published upstream: each file's sha256 is recorded at its first
download, then enforced."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS"]

_RELEASE = "https://github.com/wzhouxiff/RestoreFormerPlusPlus/releases/download/v1.0.0"
_LICENSE = "Apache-2.0 (code, wzhouxiff/RestoreFormerPlusPlus); weights trained on FFHQ (CC BY-NC-SA 4.0)"

CARDS = (
    ModelCard(
        name="restoreformer++",
        arch="restoreformer",
        config=dict(heads=4, extra_levels=1),
        task="restore",
        filename="RestoreFormer++.ckpt",
        urls=(f"{_RELEASE}/RestoreFormer%2B%2B.ckpt",),
        converter="restoreformer",
        license=_LICENSE,
        paper="Wang, Zhang, Zhang, Li, Shan, Luo. RestoreFormer++: Towards Real-World Blind Face Restoration "
        "from Undegraded Key-Value Pairs. TPAMI 2023",
        description="RestoreFormer++: cross-attention over a codebook of face parts, two decoder levels",
    ),
    ModelCard(
        name="restoreformer",
        arch="restoreformer",
        config=dict(heads=8, extra_levels=0),
        task="restore",
        filename="RestoreFormer.ckpt",
        urls=(f"{_RELEASE}/RestoreFormer.ckpt",),
        converter="restoreformer",
        license=_LICENSE,
        paper="Wang, Zhang, Zhang, Li, Shan, Luo. RestoreFormer: High-Quality Blind Face Restoration from "
        "Undegraded Key-Value Pairs. CVPR 2022",
        description="RestoreFormer: cross-attention over a codebook of face parts (8 heads)",
    ),
)
