"""Fréchet Inception Distance (Heusel et al., NeurIPS 2017) over Inception-v3 pool features.

Two weight files are understood (looked up by :func:`gfr_core.models.local_weights.find_weights`, nothing downloads):

* ``inception-fid``: pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, the TensorFlow graph that
  published FID numbers use. Its graph differs from torchvision's Inception-v3 in four blocks: the
  average pools of the A, C and first E blocks leave the padding out of the mean, the second E block
  max-pools, and its classifier has 1008 outputs. With these weights the numbers are comparable with
  pytorch-fid's.
* ``inception``: torchvision's ImageNet ``inception_v3_google-0cc3c7bd.pth``. Same features in spirit,
  but the values are not comparable with published FID.

Images are resized to 299 px (bilinear) and mapped to [-1,1]; the feature is the 2048-d global average
of the last block. FID needs many images: below 2048 per set the covariances are singular and the
value is biased upwards, so compare methods only on the same images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...io.tensor import from_uint8
from ..local_weights import check_state, find_weights, load_pth

__all__ = ["InceptionFeatures"]

Variant = Literal["inception-fid", "inception"]


def _fid_blocks() -> dict[str, type[nn.Module]]:
    """torchvision's Inception blocks with the pooling of the FID graph (pytorch-fid's weights)."""
    from torchvision.models import inception as tv

    def avg(x: Tensor) -> Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class BlockA(tv.InceptionA):
        def _forward(self, x: Tensor) -> list[Tensor]:
            return [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(avg(x)),
            ]

    class BlockC(tv.InceptionC):
        def _forward(self, x: Tensor) -> list[Tensor]:
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for conv in (
                self.branch7x7dbl_1,
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ):
                d = conv(d)
            return [self.branch1x1(x), b7, d, self.branch_pool(avg(x))]

    class BlockE(tv.InceptionE):
        pool = staticmethod(avg)

        def _forward(self, x: Tensor) -> list[Tensor]:
            b3 = self.branch3x3_1(x)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            return [
                self.branch1x1(x),
                torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1),
                torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1),
                self.branch_pool(self.pool(x)),
            ]

    class BlockEMax(BlockE):
        pool = staticmethod(lambda x: F.max_pool2d(x, kernel_size=3, stride=1, padding=1))

    return dict(a=BlockA, c=BlockC, e=BlockE, e_max=BlockEMax)


class InceptionFeatures(nn.Module):
    """2048-d Inception-v3 pool features of images (B,3,H,W) in [-1,1]; build with :meth:`from_file`."""

    def __init__(
        self,
        *,
        variant: Variant = "inception-fid",  # which graph: the FID one or torchvision's (see the module doc)
    ) -> None:
        super().__init__()
        from torchvision.models import inception as tv

        if variant not in ("inception-fid", "inception"):
            raise ValueError(f"variant must be 'inception-fid' or 'inception', got {variant!r}")
        self.variant = variant
        if variant == "inception-fid":
            b = _fid_blocks()
            blocks = [tv.BasicConv2d, b["a"], tv.InceptionB, b["c"], tv.InceptionD, b["e"], tv.InceptionAux]
            self.net = tv.Inception3(num_classes=1008, aux_logits=False, inception_blocks=blocks, init_weights=False)
            self.net.Mixed_7c = b["e_max"](2048)
        else:
            self.net = tv.Inception3(num_classes=1000, aux_logits=False, init_weights=False)
        self.net.fc = nn.Identity()  # the classifier is not used: forward stops at the pool
        # transform_input stays False: inputs arrive in [-1,1], the range both weight files expect
        self.eval()

    @classmethod
    def from_file(cls, variant: Variant = "inception-fid", path: str | Path | None = None) -> InceptionFeatures:
        """Load pytorch-fid's or torchvision's Inception weights (see :func:`find_weights`)."""
        src = find_weights(variant, path)
        m = cls(variant=variant)
        state = {k: v for k, v in load_pth(src).items() if not k.startswith(("fc.", "AuxLogits."))}
        check_state(state, m.net, src, f"Inception-v3 weights ({variant})")
        m.net.load_state_dict(state, strict=True)
        return m.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """(B,3,H,W) in [-1,1] -> (B,2048) features."""
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(x)

    def images(self, images: np.ndarray, *, batch: int = 32) -> np.ndarray:
        """Features (N,2048) float64 of uint8 RGB images (N,H,W,3)."""
        dev = next(self.parameters()).device
        out = []
        for i in range(0, len(images), batch):
            out.append(self(from_uint8(images[i : i + batch], dev)).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2048))
