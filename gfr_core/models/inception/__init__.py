"""Inception-v3 pool features for FID (pytorch-fid's graph or torchvision's; weights found on disk)."""

from .network import InceptionFeatures

__all__ = ["InceptionFeatures"]
