"""Training and evaluation data: the degradation model and aligned-face datasets."""

from . import degrade
from .datasets import AlignedFaces, aligned_faces, cache_dir, iter_images, load_prealigned, split_sources

__all__ = ["AlignedFaces", "aligned_faces", "cache_dir", "degrade", "iter_images", "load_prealigned", "split_sources"]
