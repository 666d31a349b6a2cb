"""VGG19 perceptual loss and LPIPS (AlexNet / VGG16 trunks; weights found on disk)."""

from .network import LPIPS, VGGPerceptualLoss

__all__ = ["LPIPS", "VGGPerceptualLoss"]
