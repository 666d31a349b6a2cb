"""The registry: collects the families of :mod:`gfr_core.models` and the embedded models' cards.

Like timm's pretrained configs, a name resolves to one frozen :class:`ModelCard`; the family named by its
``arch`` builds the network and converts its checkpoint.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from ..models import FAMILIES
from ..models.family import Family, ModelCard, Task, config_from_dict
from .errors import UnknownModelError

__all__ = [
    "ARCHITECTURES",
    "BEST_MODEL",
    "DEFAULT_MODEL",
    "FAMILIES_BY_ARCH",
    "build_model",
    "convert_state_dict",
    "family",
    "get_card",
    "list_models",
    "register",
]

DEFAULT_MODEL = "embedded"
"""The offline restorer: ships with the package; the default where :data:`BEST_MODEL` cannot be had."""

BEST_MODEL = "gfpgan-v1.4"
"""The default restorer where its file is cached or its sources can be reached (``hub.default_restorer``)."""

FAMILIES_BY_ARCH: Mapping[str, Family] = MappingProxyType({f.arch: f for f in FAMILIES})
ARCHITECTURES: Mapping[str, type[nn.Module]] = MappingProxyType({f.arch: f.network for f in FAMILIES})

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
"""The models this project trains and ships: ``NAME.safetensors`` beside its card ``NAME.json``."""

_REGISTRY: dict[str, ModelCard] = {}


def family(arch: str) -> Family:
    """The family of an architecture name; one line listing the known ones otherwise."""
    try:
        return FAMILIES_BY_ARCH[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; one of {', '.join(FAMILIES_BY_ARCH)}") from None


def register(card: ModelCard) -> ModelCard:
    """Add a card to the registry (names are unique, the arch and converter must exist)."""
    if card.name in _REGISTRY:
        raise ValueError(f"model {card.name!r} is already registered")
    fam = family(card.arch)
    if card.converter not in fam.converters:
        raise ValueError(f"{card.name}: family {card.arch!r} has no converter {card.converter!r}")
    _REGISTRY[card.name] = card
    return card


def list_models(task: Task | None = None) -> list[str]:
    """Names of registered models, optionally only restorers, priors or detectors."""
    return [n for n, c in _REGISTRY.items() if task is None or c.task == task]


def get_card(name: str) -> ModelCard:
    """The card registered under ``name``; raises :class:`UnknownModelError` with suggestions."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Run `gfr models` to list them: {', '.join(_REGISTRY)}"
        ) from None


def build_model(card: ModelCard, *, seed: int | None = None) -> nn.Module:
    """Instantiate the card's architecture with random weights.

    ``seed``: reproducible weights for parity checks without a download (``gfr export-onnx --random-weights``):
    the default initialisation drawn from that seed, then every parameter it leaves constant (zero biases,
    zero noise strengths, unit modulation offsets) moved off that value by N(0, 0.05²), so that no path
    of the network is idle (a zero noise strength would hide the constant-noise inputs).
    """
    if seed is None:
        return family(card.arch).build(card.config)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = family(card.arch).build(card.config)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() and bool((p == p.flatten()[0]).all()):
                p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def convert_state_dict(
    card: ModelCard, sd: Mapping[str, Tensor], extras: Mapping[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Convert a checkpoint's state_dict to our keys with the card's strict converter."""
    fam = family(card.arch)
    return fam.converters[card.converter](sd, extras or {}, config_from_dict(fam.config, card.config))


def _embedded_cards() -> list[ModelCard]:
    """Cards of the models this project trains and ships, from their JSON files in ``weights/``."""
    cards = []
    for meta in sorted(WEIGHTS_DIR.glob("*.json")):
        info: dict[str, Any] = json.loads(meta.read_text())
        cards.append(ModelCard(**info))
    return cards


for _fam in FAMILIES:
    for _card in _fam.cards:
        register(_card)
for _card in _embedded_cards():
    register(_card)
