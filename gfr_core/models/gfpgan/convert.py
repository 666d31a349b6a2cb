"""Official GFPGAN layouts (GFPGANv1Clean, GFPGANv1) -> :class:`GFPGAN` keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..family import Converter, chain, rules_converter, with_prefix
from ..stylegan2.convert import basicsr_rule, fill_w_avg
from .config import GFPGANConfig

__all__ = ["CONVERTERS", "from_official"]


def unet_rule(key: str, v: Tensor, *, clean: bool):
    """GFPGAN U-Net keys (everything outside ``stylegan_decoder``)."""
    if m := re.fullmatch(r"(condition_scale|condition_shift)\.(\d+)\.([02])\.(weight|bias)", key):
        return f"{m[1]}.{m[2]}.conv{1 if m[3] == '0' else 2}.{m[4]}", v
    if re.fullmatch(r"(final_linear|toRGB\.\d+)\.(weight|bias)", key):
        return key, v
    if clean:
        if re.fullmatch(
            r"(conv_body_first|final_conv|conv_body_(down|up)\.\d+\.(conv1|conv2|skip))\.(weight|bias)", key
        ):
            return key, v
        return None
    # Original GFPGANv1: Sequential-wrapped equalized convs with the bias in the activation.
    if m := re.fullmatch(r"(conv_body_first|final_conv)\.([01])\.(weight|bias)", key):
        if (m[2], m[3]) in (("0", "weight"), ("1", "bias")):
            return f"{m[1]}.{m[3]}", v
        return None
    if m := re.fullmatch(r"conv_body_down\.(\d+)\.(conv1|conv2|skip)\.(\d)\.(weight|bias)", key):
        expected = {
            "conv1": {"0": "weight", "1": "bias"},
            "conv2": {"1": "weight", "2": "bias"},
            "skip": {"1": "weight"},
        }
        if expected[m[2]].get(m[3]) == m[4]:
            return f"conv_body_down.{m[1]}.{m[2]}.{m[4]}", v
        return None
    if m := re.fullmatch(
        r"conv_body_up\.(\d+)\.(conv1\.0\.weight|conv1\.1\.bias|conv2\.weight|conv2\.activation\.bias|skip\.weight)",
        key,
    ):
        sub = {
            "conv1.0.weight": "conv1.weight",
            "conv1.1.bias": "conv1.bias",
            "conv2.weight": "conv2.weight",
            "conv2.activation.bias": "conv2.bias",
            "skip.weight": "skip.weight",
        }[m[2]]
        return f"conv_body_up.{m[1]}.{sub}", v
    return None


def _decoder_w_avg(out: dict[str, Tensor], extras: Mapping[str, Tensor], cfg: GFPGANConfig) -> None:
    fill_w_avg(out, {}, cfg.decoder(), prefix="stylegan_decoder.")


def _native(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: GFPGANConfig) -> dict[str, Tensor]:
    """A file written by gfr (files from before ``w_avg`` was a buffer lack the decoder's: it is recomputed)."""
    out = dict(sd)
    _decoder_w_avg(out, extras, cfg)
    return out


CONVERTERS: dict[str, Converter] = {
    "gfpgan_clean": rules_converter(
        "gfpgan_clean",
        chain(
            with_prefix("stylegan_decoder.", "stylegan_decoder.", lambda k, v: basicsr_rule(k, v, clean=True)),
            lambda k, v: unet_rule(k, v, clean=True),
        ),
        _decoder_w_avg,
    ),
    "gfpgan_original": rules_converter(
        "gfpgan_original",
        chain(
            with_prefix("stylegan_decoder.", "stylegan_decoder.", lambda k, v: basicsr_rule(k, v, clean=False)),
            lambda k, v: unet_rule(k, v, clean=False),
        ),
        _decoder_w_avg,
    ),
    "native": _native,
}


def from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[GFPGANConfig, str] | None:
    """GFPGANv1Clean / GFPGANv1 and their kwargs -> (our config, converter name)."""
    name = official_class.split(" ")[0]
    if not (name.endswith("GFPGANv1Clean") or name.endswith("GFPGANv1")):
        return None
    clean = name.endswith("Clean")
    taps = tuple(kw.get("resample_kernel", kw.get("blur_kernel", (1, 3, 3, 1))))
    extra = {} if clean else dict(lr_mlp=kw["lr_mlp"], resample_taps=taps)
    cfg = GFPGANConfig(
        out_size=kw["out_size"],
        num_style_feat=kw["num_style_feat"],
        channel_multiplier=kw["channel_multiplier"],
        narrow=kw["narrow"],
        sft_half=kw["sft_half"],
        num_mlp=kw["num_mlp"],
        flavour="clean" if clean else "original",
        **extra,
    )
    return cfg, "gfpgan_clean" if clean else "gfpgan_original"
