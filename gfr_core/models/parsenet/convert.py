"""facexlib / GPEN ``ParseNet`` keys -> :class:`ParseNet` keys.

The reference names its stem and down blocks ``encoder.0`` / ``encoder.1..n``, its up blocks ``decoder``,
every conv ``<layer>.conv2d`` and every BatchNorm ``<layer>.norm.norm``; the heads are ``out_mask_conv``
and ``out_img_conv``. Every key must match one rule, and a DataParallel ``module.`` prefix is stripped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..family import Converter, rules_converter
from .config import ParseNetConfig

__all__ = ["CONVERTERS", "from_official"]

_PARAM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_LAYER = re.compile(rf"(shortcut_func|conv1|conv2)\.(conv2d|norm\.norm)\.{_PARAM}")
_OURS = {"shortcut_func": "skip", "conv1": "conv1", "conv2": "conv2", "conv2d": "conv", "norm.norm": "bn"}


def _block_part(rest: str) -> str | None:
    m = _LAYER.fullmatch(rest)
    if m is None:
        return None
    return f"{_OURS[m[1]]}.{_OURS[m[2]]}.{m[3]}"


def _rule(key: str, v: Tensor):
    key = key.removeprefix("module.")
    if m := re.fullmatch(r"encoder\.0\.conv2d\.(weight|bias)", key):
        return f"stem.conv.{m[1]}", v
    if m := re.fullmatch(r"(encoder|body|decoder)\.(\d+)\.(.+)", key):
        group, i, part = m[1], int(m[2]), _block_part(m[3])
        if part is None or (group == "encoder" and i == 0):
            return None
        ours = {"encoder": "down", "body": "body", "decoder": "up"}[group]
        return f"{ours}.{i - 1 if group == 'encoder' else i}.{part}", v
    if m := re.fullmatch(r"(out_mask_conv|out_img_conv)\.conv2d\.(weight|bias)", key):
        return f"{'to_parsing' if m[1] == 'out_mask_conv' else 'to_rgb'}.conv.{m[2]}", v
    return None


def _native(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: object) -> dict[str, Tensor]:
    return dict(sd)


CONVERTERS: dict[str, Converter] = {"parsenet": rules_converter("parsenet", _rule), "native": _native}


def from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[ParseNetConfig, str] | None:
    """facexlib's (or GPEN's) ``ParseNet(in_size, out_size, ...)`` -> our config; None for other classes."""
    if official_class.rsplit(".", 1)[-1] != "ParseNet":
        return None
    if kw.get("in_size", 128) != kw.get("out_size", 128):
        raise ValueError("ParseNet: only in_size == out_size is supported (every released file has 512 and 512)")
    if str(kw.get("relu_type", "LeakyReLU")).lower() != "leakyrelu" or kw.get("norm_type", "bn") != "bn":
        raise ValueError("ParseNet: only relu_type='LeakyReLU' and norm_type='bn' are supported (the released files)")
    size = int(kw.get("in_size", 128))
    min_ch, max_ch = kw.get("ch_range", (32, 256))
    cfg = ParseNetConfig(
        size=size,
        min_feat_size=min(size, int(kw.get("min_feat_size", 32))),
        base_ch=int(kw.get("base_ch", 64)),
        num_classes=int(kw.get("parsing_ch", 19)),
        res_depth=int(kw.get("res_depth", 10)),
        min_ch=int(min_ch),
        max_ch=int(max_ch),
    )
    return cfg, "parsenet"
