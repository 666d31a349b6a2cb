"""Official GPEN layout (FullGenerator) -> :class:`GPEN` keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..family import Converter, chain, check_fir, rules_converter, with_prefix
from ..stylegan2.convert import fill_w_avg, rosinality_rule
from .config import GPENConfig

__all__ = ["CONVERTERS", "from_official"]


def encoder_rule(key: str, v: Tensor):
    """GPEN ``ecdN`` encoder and ``final_linear``."""
    if m := re.fullmatch(r"ecd(\d+)\.0\.(\d)\.(weight|bias|kernel)", key):
        n, idx, kind = int(m[1]), int(m[2]), m[3]
        expected = {"weight": 0, "bias": 1} if n == 0 else {"kernel": 0, "weight": 1, "bias": 2}
        if expected.get(kind) != idx:
            return None
        if kind == "kernel":
            return check_fir(key, v, 1.0)
        return f"encoder.{n}.{kind}", v
    if m := re.fullmatch(r"final_linear\.0\.(weight|bias)", key):
        return f"final_linear.{m[1]}", v
    return None


def _generator_w_avg(out: dict[str, Tensor], extras: Mapping[str, Tensor], cfg: GPENConfig) -> None:
    fill_w_avg(out, {}, cfg.generator(), prefix="generator.")


def _native(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: GPENConfig) -> dict[str, Tensor]:
    out = dict(sd)
    _generator_w_avg(out, extras, cfg)
    return out


CONVERTERS: dict[str, Converter] = {
    "gpen": rules_converter(
        "gpen", chain(with_prefix("generator.", "generator.", rosinality_rule), encoder_rule), _generator_w_avg
    ),
    "native": _native,
}


def from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[GPENConfig, str] | None:
    """GPEN ``FullGenerator`` and its kwargs -> (our config, converter name)."""
    if "FullGenerator" not in official_class:
        return None
    cfg = GPENConfig(
        size=kw["size"],
        style_dim=kw["style_dim"],
        n_mlp=kw["n_mlp"],
        channel_multiplier=kw["channel_multiplier"],
        narrow=kw["narrow"],
        lr_mlp=kw.get("lr_mlp", 0.01),
        resample_taps=tuple(kw.get("resample_kernel", kw.get("blur_kernel", (1, 3, 3, 1)))),
    )
    return cfg, "gpen"
