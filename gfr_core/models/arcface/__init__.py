"""ArcFace IR-ResNet-18: GFPGAN's identity network (identity loss and metric; weights found on disk)."""

from .network import IRBlock, ResNetArcFace, to_identity_input

__all__ = ["IRBlock", "ResNetArcFace", "to_identity_input"]
