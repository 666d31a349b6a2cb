"""Losses of the restorer: PSNR, pyramid L1, adversarial and feature matching, perceptual, identity."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.arcface import to_identity_input

__all__ = ["RestorerLosses", "psnr_loss"]


def psnr_loss(x: Tensor, y: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over the batch of ``10*log10(MSE_i)`` for (B,3,H,W) images in [-1,1]: minus the per-image PSNR
    up to a constant.

    Evaluation averages PSNR per image, so the same small absolute error costs many more dB on a face that
    is nearly clean than on a badly degraded one; L1 or L2 over the batch weights both alike (or by the
    error). The log scales each image's MSE gradient by 1/MSE_i (the PSNR loss of HINet, Chen et al. 2021).
    """
    mse = (x.float() - y.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(mse + eps).mean()


@dataclass
class RestorerLosses:
    """The weighted loss terms of one restorer step; a term of weight 0 is not computed."""

    weights: dict[str, float]  # term name -> weight
    discriminator: nn.Module | None = None  # for 'adv' and 'fm'
    perceptual: nn.Module | None = None  # VGG19 perceptual loss
    arcface: nn.Module | None = None  # identity network

    def __call__(self, out: Tensor, gt: Tensor, rgbs: list[Tensor]) -> dict[str, Tensor]:
        """Terms for output ``out`` and ground truth ``gt`` (B,3,S,S) in [-1,1], with the U-Net's auxiliary images."""
        losses = dict(l1=F.l1_loss(out, gt))
        if self.weights.get("psnr", 0) > 0:
            losses["psnr"] = psnr_loss(out, gt)
        if rgbs:  # the auxiliary images come from the U-Net (not computed when only the head trains)
            losses["pyramid"] = sum(
                F.l1_loss(r.float(), F.interpolate(gt, size=r.shape[-2:], mode="area")) for r in rgbs
            ) / len(rgbs)
        if self.discriminator is not None:
            logits, f_fake = self.discriminator(out, return_features=True)
            with torch.no_grad():
                _, f_real = self.discriminator(gt, return_features=True)
            losses["adv"] = F.softplus(-logits).mean()
            losses["fm"] = sum(F.l1_loss(a, b) for a, b in zip(f_fake, f_real)) / len(f_fake)
        if self.perceptual is not None:
            losses["perceptual"] = self.perceptual(out, gt)
        if self.arcface is not None:
            with torch.no_grad():
                id_gt = self.arcface(to_identity_input(gt, self.arcface.size))
            losses["identity"] = F.l1_loss(self.arcface(to_identity_input(out, self.arcface.size)), id_gt)
        return losses

    def total(self, losses: dict[str, Tensor]) -> Tensor:
        return sum(self.weights[k] * v for k, v in losses.items())
