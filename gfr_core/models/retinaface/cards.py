"""Released RetinaFace detector (facexlib's release asset, mirrored on the Hub)."""

from __future__ import annotations

from ..family import ModelCard

__all__ = ["CARDS"]

CARDS = (
    ModelCard(
        name="retinaface-r50",
        arch="retinaface",
        config={},
        task="detect",
        repo_id="camenduru/facexlib",
        filename="detection_Resnet50_Final.pth",
        urls=("https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",),
        sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        size_bytes=109_497_761,
        converter="retinaface",
        license="MIT (biubug6/Pytorch_Retinaface, xinntao/facexlib); trained on WIDER FACE (research use)",
        paper="Deng, Guo, Ververas, Kotsia, Zafeiriou. RetinaFace: Single-shot Multi-level Face Localisation in the Wild. CVPR 2020",
        description="RetinaFace ResNet-50 face detector with 5 landmarks (GFPGAN's default detector)",
    ),
)
