"""Weights of the networks trained elsewhere (VGG, AlexNet, LPIPS, Inception, ArcFace): found on disk, never downloaded.

A file is looked up, in order: the explicit ``path``; the environment variable of that file
(``GFR_VGG19_WEIGHTS``, ``GFR_VGG16_WEIGHTS``, ``GFR_ALEXNET_WEIGHTS``, ``GFR_LPIPS_WEIGHTS``,
``GFR_INCEPTION_FID_WEIGHTS``, ``GFR_INCEPTION_WEIGHTS``, ``GFR_ARCFACE_WEIGHTS``); torch's hub cache
(``torch.hub.get_dir()/checkpoints``, under the file names their projects release them as); for LPIPS's
calibrated linear layers, the files of the installed ``lpips`` package. A missing file raises
:class:`WeightsNotFound`, one line naming the file and where to put it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["Kind", "WeightsNotFound", "check_state", "find_weights", "load_pth"]

Kind = Literal["vgg19", "vgg16", "alexnet", "lpips-alex", "lpips-vgg", "inception-fid", "inception", "arcface"]

# Released file names (the names torch's hub cache keeps them under) and the variable that overrides each.
_FILES: dict[str, tuple[str, str]] = {
    "vgg19": ("GFR_VGG19_WEIGHTS", "vgg19-dcbb9e9d.pth"),
    "vgg16": ("GFR_VGG16_WEIGHTS", "vgg16-397923af.pth"),
    "alexnet": ("GFR_ALEXNET_WEIGHTS", "alexnet-owt-7be5be79.pth"),
    "lpips-alex": ("GFR_LPIPS_WEIGHTS", "alex.pth"),
    "lpips-vgg": ("GFR_LPIPS_WEIGHTS", "vgg.pth"),
    "inception-fid": ("GFR_INCEPTION_FID_WEIGHTS", "pt_inception-2015-12-05-6726825d.pth"),  # pytorch-fid's file
    "inception": ("GFR_INCEPTION_WEIGHTS", "inception_v3_google-0cc3c7bd.pth"),
    "arcface": ("GFR_ARCFACE_WEIGHTS", "arcface_resnet18.pth"),  # GFPGAN's identity network
}


class WeightsNotFound(FileNotFoundError):
    """A network's weights are not on this machine."""


def find_weights(kind: Kind, path: str | Path | None = None) -> Path:
    """Where the weights of ``kind`` are: ``path``, its environment variable, torch's hub cache, or the lpips package."""
    if kind not in _FILES:
        raise ValueError(f"unknown weights {kind!r}; one of {', '.join(_FILES)}")
    env, name = _FILES[kind]
    candidates = [Path(path)] if path else []
    if os.environ.get(env):
        candidates.append(Path(os.environ[env]))
    if kind.startswith("lpips-"):
        try:
            import lpips  # noqa: F401  (only its weight files are used)

            candidates.append(Path(lpips.__file__).parent / "weights" / "v0.1" / name)
        except ImportError:
            pass
    else:
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / name)
    for c in candidates:
        if c.is_file():
            return c
    where = candidates[0] if candidates else Path(torch.hub.get_dir()) / "checkpoints" / name
    hint = (
        "pip install lpips==0.1.4 (it ships them)"
        if kind.startswith("lpips-")
        else f"copy {'GFPGAN' if kind == 'arcface' else 'pytorch-fid' if kind == 'inception-fid' else 'torchvision'}'s {name} there"
    )
    raise WeightsNotFound(f"{kind} weights not found at {where}; {hint}, or set {env} to the file")


def load_pth(path: Path) -> dict[str, Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return dict(state)


def check_state(state: Mapping[str, Tensor], module: nn.Module, source: Path, what: str) -> None:
    """Raise one line unless ``state`` has exactly ``module``'s keys and shapes (BatchNorm counters may be absent)."""
    skip = lambda k: k.endswith("num_batches_tracked")  # noqa: E731  (older files lack them; load_state_dict fills them)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items() if not skip(k)}
    got = {k: tuple(v.shape) for k, v in state.items() if not skip(k)}
    if got != expected:
        bad = sorted(set(got) ^ set(expected)) or sorted(k for k in got if got[k] != expected[k])
        raise ValueError(f"{source}: not {what}; mismatched keys {bad[:3]}")
