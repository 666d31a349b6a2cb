"""Networks trained elsewhere that gfr uses when their weights are on disk: a VGG19 perceptual loss and LPIPS.

Nothing here downloads: the files are found by :func:`gfr_core.models.local_weights.find_weights`.

* :class:`VGGPerceptualLoss`: GFPGAN's perceptual term. VGG19 pre-activation features of
  conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4 with weights 0.1, 0.1, 1, 1, 1, inputs mapped from
  [-1,1] to ImageNet-normalised [0,1], L1 between the features.
* :class:`LPIPS`: Zhang et al. (CVPR 2018) v0.1. Inputs in [-1,1] are shifted and scaled per channel,
  the trunk's post-ReLU features at five depths are unit-normalised over channels, their squared
  differences weighted per channel by the linear layers, averaged over space and summed over depths.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ..local_weights import find_weights, load_pth

__all__ = ["LPIPS", "VGGPerceptualLoss"]


def _trunk_state(state: Mapping[str, Tensor], trunk: nn.Sequential, source: Path) -> dict[str, Tensor]:
    """torchvision ``features.N.*`` keys -> ``trunk`` keys; the classifier is dropped, anything else raises."""
    wanted = {k: v.shape for k, v in trunk.state_dict().items()}
    out, unmatched = {}, []
    for k, v in state.items():
        if k.startswith("classifier."):
            continue
        if k.startswith("features.") and wanted.get(k[len("features.") :]) == v.shape:
            out[k[len("features.") :]] = v
        elif k.startswith("features.") and int(k.split(".")[1]) >= len(trunk):
            continue  # layers past the last one used
        else:
            unmatched.append(k)
    missing = sorted(set(wanted) - set(out))
    if unmatched or missing:
        raise ValueError(
            f"{source}: not a torchvision state dict for this network (unmatched {unmatched[:3]}, missing {missing[:3]})"
        )
    return out


def _features(arch: str, depth: int) -> nn.Sequential:
    """torchvision's ``features`` of ``arch``, random weights, first ``depth`` layers, ReLUs not in place."""
    import torchvision

    layers = getattr(torchvision.models, arch)(weights=None).features[:depth]
    for m in layers:
        if isinstance(m, nn.ReLU):
            m.inplace = False  # tapped activations must not be overwritten by the next layer
    return layers.eval().requires_grad_(False)


def _tapped(trunk: nn.Sequential, h: Tensor, taps: tuple[int, ...]) -> list[Tensor]:
    """Run ``h`` through ``trunk`` and return the outputs of the layers at indices ``taps``."""
    out = []
    for i, layer in enumerate(trunk):
        h = layer(h)
        if i in taps:
            out.append(h)
    return out


class VGGPerceptualLoss(nn.Module):
    """GFPGAN's VGG19 perceptual loss between images (B,3,H,W) in [-1,1]; build with :meth:`from_file`."""

    # VGG19 ``features`` index of each conv layer's output (pre-activation) -> weight.
    LAYERS: dict[str, tuple[int, float]] = {
        "conv1_2": (2, 0.1),
        "conv2_2": (7, 0.1),
        "conv3_4": (16, 1.0),
        "conv4_4": (25, 1.0),
        "conv5_4": (34, 1.0),
    }

    def __init__(self) -> None:
        super().__init__()
        self.trunk = _features("vgg19", max(i for i, _ in self.LAYERS.values()) + 1)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> VGGPerceptualLoss:
        """Load torchvision's VGG19 weights (see :func:`find_weights`)."""
        src = find_weights("vgg19", path)
        loss = cls()
        loss.trunk.load_state_dict(_trunk_state(load_pth(src), loss.trunk, src), strict=True)
        return loss

    def features(self, x: Tensor) -> list[Tensor]:
        """Pre-activation features of :attr:`LAYERS` for (B,3,H,W) in [-1,1]."""
        return _tapped(self.trunk, ((x + 1) / 2 - self.mean) / self.std, tuple(i for i, _ in self.LAYERS.values()))

    def forward(self, x: Tensor, target: Tensor) -> Tensor:
        """Weighted L1 between the features of ``x`` and of ``target`` (no gradient into the target)."""
        with torch.no_grad():
            ft = self.features(target)
        fx = self.features(x)
        weights = [w for _, w in self.LAYERS.values()]
        return sum(w * torch.nn.functional.l1_loss(a, b) for w, a, b in zip(weights, fx, ft))


class LPIPS(nn.Module):
    """LPIPS v0.1 distance; build with :meth:`from_files`. Lower is more similar."""

    # trunk: torchvision arch, index of the ReLU after which each of the five features is taken, channels.
    NETS: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
        "alex": ("alexnet", (1, 4, 7, 9, 11), (64, 192, 384, 256, 256)),
        "vgg": ("vgg16", (3, 8, 15, 22, 29), (64, 128, 256, 512, 512)),
    }

    def __init__(self, *, net: Literal["alex", "vgg"] = "alex") -> None:
        super().__init__()
        if net not in self.NETS:
            raise ValueError(f"LPIPS net must be one of {', '.join(self.NETS)}, got {net!r}")
        self.net = net
        arch, taps, chans = self.NETS[net]
        self.taps = taps
        self.trunk = _features(arch, taps[-1] + 1)
        self.lin = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in chans).requires_grad_(False)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @classmethod
    def from_files(
        cls, net: Literal["alex", "vgg"] = "alex", *, trunk: str | Path | None = None, lin: str | Path | None = None
    ) -> LPIPS:
        """Load the trunk (torchvision's file) and the calibrated linear layers (the lpips package's v0.1 file)."""
        m = cls(net=net)
        trunk_src = find_weights("alexnet" if net == "alex" else "vgg16", trunk)
        lin_src = find_weights(f"lpips-{net}", lin)  # type: ignore[arg-type]
        m.trunk.load_state_dict(_trunk_state(load_pth(trunk_src), m.trunk, trunk_src), strict=True)
        lin_state = load_pth(lin_src)
        mapped = {
            f"{k.split('.')[0][3:]}.weight": v
            for k, v in lin_state.items()
            if k.startswith("lin") and k.endswith(".model.1.weight")
        }
        expected = {k: v.shape for k, v in m.lin.state_dict().items()}
        if len(mapped) != len(lin_state) or {k: v.shape for k, v in mapped.items()} != expected:
            raise ValueError(f"{lin_src}: not LPIPS v0.1 linear layers for net {net!r} (keys {sorted(lin_state)[:3]})")
        m.lin.load_state_dict(mapped, strict=True)
        return m

    @torch.no_grad()
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Distances (B,) between images (B,3,H,W) in [-1,1]."""
        fx = _tapped(self.trunk, (x - self.shift) / self.scale, self.taps)
        fy = _tapped(self.trunk, (y - self.shift) / self.scale, self.taps)
        unit = lambda f: f / (f.square().sum(1, keepdim=True).sqrt() + 1e-10)  # noqa: E731  (over channels)
        return sum(lin((unit(a) - unit(b)).square()).mean((1, 2, 3)) for lin, a, b in zip(self.lin, fx, fy))
