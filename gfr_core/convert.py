"""Converters from the official checkpoints' state_dict keys to ``gfr_core``'s module tree.

Every converter maps each official key to exactly one of ours, or drops it only when it is a fixed FIR
kernel buffer whose value is checked against the kernel we rebuild. Any key no rule explains raises
:class:`UnmatchedKeysError`, so a checkpoint of the wrong family fails loudly instead of loading partly.

Converters work on real tensors and on ``meta`` tensors (used to check the reference manifests).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .nn import fir_kernel

__all__ = [
    "CONVERTERS",
    "UnmatchedKeysError",
    "convert_state_dict",
    "unwrap_checkpoint",
]


class UnmatchedKeysError(KeyError):
    """A checkpoint holds keys that the chosen converter cannot place."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


_DROP = object()


def _check_fir(key: str, value: Tensor, gain: float) -> object:
    """Accept a stored FIR kernel buffer only if it equals the kernel the model rebuilds."""
    if tuple(value.shape) != (4, 4):
        raise ValueError(f"{key}: expected a (4,4) FIR kernel, got shape {tuple(value.shape)}")
    if value.device.type != "meta" and not torch.allclose(value.float().cpu(), fir_kernel(gain=gain), atol=1e-6):
        raise ValueError(f"{key}: FIR kernel differs from outer([1,3,3,1]) x {gain}; this checkpoint is not supported")
    return _DROP


def _flatten_bias(value: Tensor) -> Tensor:
    """(1,C,1,1) -> (C,)."""
    return value.reshape(-1)


# ---------------------------------------------------------------------------------------------------
# StyleGAN2 generator sub-trees. Each function maps one key (without prefix) to (our key, value).

Mapped = tuple[str, Tensor] | object  # (key, value) or _DROP


def _stylegan_basicsr(key: str, v: Tensor, *, clean: bool) -> Mapped | None:
    """BasicSR ``StyleGAN2Generator`` (clean=False) or GFPGAN ``StyleGAN2GeneratorClean`` (clean=True)."""
    if m := re.fullmatch(r"style_mlp\.(\d+)\.(weight|bias)", key):
        n = int(m[1])
        idx = (n - 1) // 2 if clean else n - 1
        if clean and n % 2 == 0:
            return None
        return f"mapping.layers.{idx}.{m[2]}", v
    if key == "constant_input.weight":
        return "const", v
    if m := re.fullmatch(r"noises\.noise(\d+)", key):
        return f"convs.{m[1]}.noise_const", v
    if m := re.fullmatch(r"(?:style_conv1|style_convs\.(\d+))\.(.+)", key):
        layer = f"convs.{0 if m[1] is None else int(m[1]) + 1}"
        sub = m[2]
        if sub == "modulated_conv.weight":
            return f"{layer}.conv.weight", v
        if s := re.fullmatch(r"modulated_conv\.modulation\.(weight|bias)", sub):
            return f"{layer}.conv.affine.{s[1]}", v
        if sub == "weight":
            return f"{layer}.noise_strength", v
        if sub == ("bias" if clean else "activate.bias"):
            return f"{layer}.bias", _flatten_bias(v)
        return None
    if m := re.fullmatch(r"(?:to_rgb1|to_rgbs\.(\d+))\.(.+)", key):
        layer = f"torgbs.{0 if m[1] is None else int(m[1]) + 1}"
        sub = m[2]
        if sub == "modulated_conv.weight":
            return f"{layer}.conv.weight", v
        if s := re.fullmatch(r"modulated_conv\.modulation\.(weight|bias)", sub):
            return f"{layer}.conv.affine.{s[1]}", v
        if sub == "bias":
            return f"{layer}.bias", _flatten_bias(v)
    return None


def _stylegan_rosinality(key: str, v: Tensor) -> Mapped | None:
    """rosinality ``Generator`` (also GPEN's generator, whose keys are the same)."""
    if m := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
        return f"mapping.layers.{int(m[1]) - 1}.{m[2]}", v
    if key == "input.input":
        return "const", v
    if m := re.fullmatch(r"noises\.noise_(\d+)", key):
        return f"convs.{m[1]}.noise_const", v
    if m := re.fullmatch(r"(?:conv1|convs\.(\d+))\.(.+)", key):
        layer = f"convs.{0 if m[1] is None else int(m[1]) + 1}"
        sub = m[2]
        if sub == "conv.weight":
            return f"{layer}.conv.weight", v
        if s := re.fullmatch(r"conv\.modulation\.(weight|bias)", sub):
            return f"{layer}.conv.affine.{s[1]}", v
        if sub == "conv.blur.kernel":
            return _check_fir(key, v, 4.0)
        if sub == "noise.weight":
            return f"{layer}.noise_strength", v
        if sub == "activate.bias":
            return f"{layer}.bias", v
        return None
    if m := re.fullmatch(r"(?:to_rgb1|to_rgbs\.(\d+))\.(.+)", key):
        layer = f"torgbs.{0 if m[1] is None else int(m[1]) + 1}"
        sub = m[2]
        if sub == "conv.weight":
            return f"{layer}.conv.weight", v
        if s := re.fullmatch(r"conv\.modulation\.(weight|bias)", sub):
            return f"{layer}.conv.affine.{s[1]}", v
        if sub == "upsample.kernel":
            return _check_fir(key, v, 4.0)
        if sub == "bias":
            return f"{layer}.bias", _flatten_bias(v)
    return None


# ---------------------------------------------------------------------------------------------------
# Restorers


def _gfpgan_unet(key: str, v: Tensor, *, clean: bool) -> Mapped | None:
    """GFPGAN U-Net keys (everything outside ``stylegan_decoder``)."""
    if m := re.fullmatch(r"(condition_scale|condition_shift)\.(\d+)\.([02])\.(weight|bias)", key):
        return f"{m[1]}.{m[2]}.conv{1 if m[3] == '0' else 2}.{m[4]}", v
    if re.fullmatch(r"(final_linear|toRGB\.\d+)\.(weight|bias)", key):
        return key, v
    if clean:
        if re.fullmatch(r"(conv_body_first|final_conv|conv_body_(down|up)\.\d+\.(conv1|conv2|skip))\.(weight|bias)", key):
            return key, v
        return None
    # Original GFPGANv1: Sequential-wrapped equalized convs with the bias in the activation.
    if m := re.fullmatch(r"(conv_body_first|final_conv)\.([01])\.(weight|bias)", key):
        if (m[2], m[3]) in (("0", "weight"), ("1", "bias")):
            return f"{m[1]}.{m[3]}", v
        return None
    if m := re.fullmatch(r"conv_body_down\.(\d+)\.(conv1|conv2|skip)\.(\d)\.(weight|bias)", key):
        expected = {"conv1": {"0": "weight", "1": "bias"}, "conv2": {"1": "weight", "2": "bias"}, "skip": {"1": "weight"}}
        if expected[m[2]].get(m[3]) == m[4]:
            return f"conv_body_down.{m[1]}.{m[2]}.{m[4]}", v
        return None
    if m := re.fullmatch(r"conv_body_up\.(\d+)\.(conv1\.0\.weight|conv1\.1\.bias|conv2\.weight|conv2\.activation\.bias|skip\.weight)", key):
        sub = {"conv1.0.weight": "conv1.weight", "conv1.1.bias": "conv1.bias", "conv2.weight": "conv2.weight",
               "conv2.activation.bias": "conv2.bias", "skip.weight": "skip.weight"}[m[2]]
        return f"conv_body_up.{m[1]}.{sub}", v
    return None


def _gpen_encoder(key: str, v: Tensor) -> Mapped | None:
    """GPEN ``ecdN`` encoder and ``final_linear``."""
    if m := re.fullmatch(r"ecd(\d+)\.0\.(\d)\.(weight|bias|kernel)", key):
        n, idx, kind = int(m[1]), int(m[2]), m[3]
        expected = {"weight": 0, "bias": 1} if n == 0 else {"kernel": 0, "weight": 1, "bias": 2}
        if expected.get(kind) != idx:
            return None
        if kind == "kernel":
            return _check_fir(key, v, 1.0)
        return f"encoder.{n}.{kind}", v
    if m := re.fullmatch(r"final_linear\.0\.(weight|bias)", key):
        return f"final_linear.{m[1]}", v
    return None


def _with_prefix(prefix: str, out_prefix: str, fn: Callable[[str, Tensor], Mapped | None]):
    def rule(key: str, v: Tensor) -> Mapped | None:
        if not key.startswith(prefix):
            return None
        res = fn(key[len(prefix) :], v)
        if res is None or res is _DROP:
            return res
        k, val = res  # type: ignore[misc]
        return out_prefix + k, val

    return rule


def _chain(*rules: Callable[[str, Tensor], Mapped | None]) -> Callable[[str, Tensor], Mapped | None]:
    def rule(key: str, v: Tensor) -> Mapped | None:
        for r in rules:
            res = r(key, v)
            if res is not None:
                return res
        return None

    return rule


_RULES: dict[str, Callable[[str, Tensor], Mapped | None]] = {
    "stylegan2_clean": lambda k, v: _stylegan_basicsr(k, v, clean=True),
    "stylegan2_basicsr": lambda k, v: _stylegan_basicsr(k, v, clean=False),
    "stylegan2_rosinality": _stylegan_rosinality,
    "gfpgan_clean": _chain(
        _with_prefix("stylegan_decoder.", "stylegan_decoder.", lambda k, v: _stylegan_basicsr(k, v, clean=True)),
        lambda k, v: _gfpgan_unet(k, v, clean=True),
    ),
    "gfpgan_original": _chain(
        _with_prefix("stylegan_decoder.", "stylegan_decoder.", lambda k, v: _stylegan_basicsr(k, v, clean=False)),
        lambda k, v: _gfpgan_unet(k, v, clean=False),
    ),
    "gpen": _chain(_with_prefix("generator.", "generator.", _stylegan_rosinality), _gpen_encoder),
}


def _native(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return dict(sd)


def _retinaface(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """facexlib RetinaFace: strip a DataParallel ``module.`` prefix; every key must belong to a known part."""
    out, unmatched = {}, []
    for k, v in sd.items():
        k2 = k[len("module."):] if k.startswith("module.") else k
        if re.match(r"(body|fpn|ssh[123]|ClassHead|BboxHead|LandmarkHead)\.", k2):
            out[k2] = v
        else:
            unmatched.append(k)
    if unmatched:
        raise UnmatchedKeysError(f"converter 'retinaface' cannot place {len(unmatched)} key(s): {', '.join(unmatched[:5])}")
    return out


def _make_converter(name: str) -> Callable[[Mapping[str, Tensor]], dict[str, Tensor]]:
    rule = _RULES[name]

    def convert(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        unmatched = []
        for key, value in sd.items():
            res = rule(key, value)
            if res is None:
                unmatched.append(key)
            elif res is not _DROP:
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
        return out

    convert.__name__ = f"convert_{name}"
    return convert


CONVERTERS: dict[str, Callable[[Mapping[str, Tensor]], dict[str, Tensor]]] = {
    name: _make_converter(name) for name in _RULES
}
CONVERTERS["native"] = _native
CONVERTERS["retinaface"] = _retinaface


def convert_state_dict(name: str, sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Convert an official state_dict with the converter ``name`` (see :data:`CONVERTERS`)."""
    if name not in CONVERTERS:
        raise KeyError(f"unknown converter {name!r}; choose one of {sorted(CONVERTERS)}")
    return CONVERTERS[name](sd)


def unwrap_checkpoint(obj: Any) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Find the generator state_dict inside a loaded checkpoint.

    Order: ``params_ema`` (BasicSR / GFPGAN), ``params``, ``g_ema`` (rosinality), else a bare state_dict.

    Returns:
        (state_dict, extras) where extras may hold ``latent_avg`` (rosinality's truncation centre).
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint holds a {type(obj).__name__}, not a dict of tensors")
    for key in ("params_ema", "params", "g_ema"):
        if key in obj and isinstance(obj[key], Mapping):
            extras = {k: v for k, v in obj.items() if k == "latent_avg" and isinstance(v, Tensor)}
            return dict(obj[key]), extras
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return dict(obj), {}
    raise ValueError(
        "checkpoint has no 'params_ema', 'params' or 'g_ema' entry and is not a bare state_dict "
        f"(top-level keys: {list(obj)[:8]})"
    )
