"""RetinaFace-R50 (Deng et al., CVPR 2020), the detector GFPGAN's face helper uses, with five landmarks.

The module tree follows the released ``detection_Resnet50_Final.pth`` (facexlib) so its state_dict loads
with ``strict=True`` after stripping a DataParallel ``module.`` prefix: a torchvision ResNet-50 body (its
layer2-4 outputs), a 3-level FPN, an SSH context module per level and 1x1 class / box / landmark heads
with two anchors per location.

Inference: BGR input minus the mean (104, 117, 123), anchors of sizes (16, 32), (64, 128), (256, 512) on
strides 8, 16, 32, box and landmark offsets decoded with variances (0.1, 0.2), then NMS.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import RetinaFaceConfig

__all__ = ["RetinaFace", "decode_boxes", "decode_landmarks", "prior_boxes"]

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
MEAN_BGR = (104.0, 117.0, 123.0)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, leaky: float | None = 0.0) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ leaky ReLU unless ``leaky`` is None); keys ``.0`` conv and ``.1`` BN."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


class _FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = _conv_bn(in_channels[0], out_channels, 1, leaky=leaky)
        self.output2 = _conv_bn(in_channels[1], out_channels, 1, leaky=leaky)
        self.output3 = _conv_bn(in_channels[2], out_channels, 1, leaky=leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, 3, leaky=leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, 3, leaky=leaky)

    def forward(self, c3: Tensor, c4: Tensor, c5: Tensor) -> list[Tensor]:
        o1, o2, o3 = self.output1(c3), self.output2(c4), self.output3(c5)
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"))
        return [o1, o2, o3]


class _SSH(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        leaky = 0.1 if cout <= 64 else 0.0
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, leaky=None)
        self.conv5X5_1 = _conv_bn(cin, cout // 4, 3, leaky=leaky)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, 3, leaky=None)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4, 3, leaky=leaky)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, 3, leaky=None)

    def forward(self, x: Tensor) -> Tensor:
        a = self.conv3X3(x)
        b1 = self.conv5X5_1(x)
        b = self.conv5X5_2(b1)
        c = self.conv7x7_3(self.conv7X7_2(b1))
        return F.relu(torch.cat([a, b, c], dim=1))


class _Head(nn.Module):
    def __init__(self, cin: int, num_anchors: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, num_anchors * per_anchor, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """RetinaFace with a ResNet-50 backbone (facexlib ``retinaface_resnet50`` layout)."""

    def __init__(
        self,
        *,
        fpn_channels: int = 256,  # FPN / SSH width
        num_anchors: int = 2,  # anchors per location
    ) -> None:
        super().__init__()
        from torchvision.models import resnet50

        self.config = RetinaFaceConfig(fpn_channels=fpn_channels, num_anchors=num_anchors)
        from torchvision.models._utils import IntermediateLayerGetter

        self.body = IntermediateLayerGetter(resnet50(weights=None), {"layer2": "1", "layer3": "2", "layer4": "3"})
        self.fpn = _FPN((512, 1024, 2048), fpn_channels)
        self.ssh1, self.ssh2, self.ssh3 = (_SSH(fpn_channels, fpn_channels) for _ in range(3))
        self.ClassHead = nn.ModuleList(_Head(fpn_channels, num_anchors, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(fpn_channels, num_anchors, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(fpn_channels, num_anchors, 10) for _ in range(3))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B,3,H,W) mean-subtracted BGR -> (boxes (B,A,4), class probabilities (B,A,2), landmarks (B,A,10)) offsets."""
        c = self.body(x)
        feats = self.fpn(c["1"], c["2"], c["3"])
        feats = [self.ssh1(feats[0]), self.ssh2(feats[1]), self.ssh3(feats[2])]
        boxes = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        logits = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        lms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return boxes, F.softmax(logits, dim=-1), lms

    @torch.inference_mode()
    def detect(
        self, rgb: np.ndarray, *, score_threshold: float = 0.8, nms_threshold: float = 0.4
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect faces in an (H,W,3) uint8 RGB image -> (boxes (N,4), scores (N,), landmarks (N,5,2)) in pixels."""
        from torchvision.ops import nms

        dev = next(self.parameters()).device
        h, w = rgb.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).float().to(dev) - torch.tensor(MEAN_BGR, device=dev)
        loc, conf, lms = self(x.permute(2, 0, 1)[None])
        priors = prior_boxes(h, w).to(dev)
        scale = torch.tensor([w, h], dtype=torch.float32, device=dev)
        boxes = decode_boxes(loc[0], priors) * scale.repeat(2)
        landmarks = decode_landmarks(lms[0], priors) * scale.repeat(5)
        scores = conf[0, :, 1]
        keep = scores > score_threshold
        boxes, landmarks, scores = boxes[keep], landmarks[keep], scores[keep]
        keep = nms(boxes, scores, nms_threshold)
        return boxes[keep].cpu().numpy(), scores[keep].cpu().numpy(), landmarks[keep].reshape(-1, 5, 2).cpu().numpy()


def prior_boxes(h: int, w: int) -> Tensor:
    """Anchors (A,4) as (cx, cy, w, h) relative to the image size, in the order the heads emit them."""
    out = []
    for sizes, step in zip(MIN_SIZES, STEPS):
        fh, fw = math.ceil(h / step), math.ceil(w / step)
        for i in range(fh):
            for j in range(fw):
                for s in sizes:
                    out.append(((j + 0.5) * step / w, (i + 0.5) * step / h, s / w, s / h))
    return torch.tensor(out, dtype=torch.float32)


def decode_boxes(loc: Tensor, priors: Tensor) -> Tensor:
    """Offsets (A,4) -> boxes (A,4) as relative (x1, y1, x2, y2)."""
    c = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    s = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([c - s / 2, c + s / 2], dim=1)


def decode_landmarks(pre: Tensor, priors: Tensor) -> Tensor:
    """Offsets (A,10) -> five relative (x, y) points per anchor, (A,10)."""
    pts = pre.reshape(-1, 5, 2) * VARIANCES[0] * priors[:, None, 2:] + priors[:, None, :2]
    return pts.reshape(-1, 10)
