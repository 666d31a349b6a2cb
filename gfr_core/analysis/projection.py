"""Projection into the prior: the w+ whose rendering matches a face, found by optimisation (Image2StyleGAN's
idea, Abdal et al. 2019), as opposed to the w+ a restorer's encoder predicts in one pass."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..io.tensor import from_uint8
from ..models import StyleGAN2Generator

__all__ = ["project"]


def project(
    G: StyleGAN2Generator,
    face: np.ndarray,
    *,
    steps: int = 150,
    lr: float = 0.05,
    anchor: float = 1e-3,
    init: Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, list[float]]:
    """Optimise a w+ so that ``G`` renders ``face``.

    Args:
        G: The prior.
        face: (S,S,3) uint8 RGB aligned face; resized to ``G.size`` if needed.
        steps: Adam steps (a 64 px prior takes a few seconds on a CPU).
        lr: Adam learning rate, decayed by a cosine to 0.
        anchor: Weight of the pull towards the mean latent ``w_avg`` (keeps the w+ in the prior's range).
        init: (1,num_ws,D) starting w+ (default: ``w_avg`` on every layer), e.g. a restorer's prediction.
        progress: Called as ``progress(step, steps)``.

    Returns:
        ((1,num_ws,D) w+, the loss at every step): the loss is the mean squared error of the rendering
        at full, half and quarter resolution, in [-1,1] units.
    """
    if face.shape[0] != G.size:
        import cv2

        face = cv2.resize(
            face, (G.size, G.size), interpolation=cv2.INTER_AREA if face.shape[0] > G.size else cv2.INTER_CUBIC
        )
    device = G.const.device
    target = from_uint8(face[None], device)
    w = (G.broadcast(G.w_avg[None]) if init is None else init).detach().clone().to(device).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    losses = []
    for i in range(steps):
        img = G.synthesis(w, noise_mode="const")
        loss = sum(F.mse_loss(F.avg_pool2d(img, k), F.avg_pool2d(target, k)) for k in (1, 2, 4))
        loss = loss + anchor * (w - G.w_avg).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(i + 1, steps)
    return w.detach(), losses
