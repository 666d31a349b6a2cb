"""Official RestoreFormer layout -> :class:`RestoreFormer` keys (the names are the same).

The release's ``.ckpt`` files are PyTorch Lightning checkpoints: the weights under ``state_dict``, every
network key prefixed ``vqvae.``. Its loader takes them non-strictly; here the ``vqvae.`` keys must fit
exactly, and the training-only entries beside them are dropped by name (``loss.*``: the discriminator and
the perceptual network of the training loss). Any other key is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..family import DROP, Converter, chain, rules_converter, with_prefix
from .config import RestoreFormerConfig

__all__ = ["CONVERTERS", "TRAINING_ONLY", "from_official"]

_PARTS = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.", "quantize.")

TRAINING_ONLY = ("loss.",)
"""Prefixes of the Lightning checkpoint's training-only entries (beside ``vqvae.``), dropped by name."""


def network_rule(key: str, v: Tensor):
    """A key of the network itself, as it is."""
    return (key, v) if key.startswith(_PARTS) else None


def training_rule(key: str, v: Tensor):
    """The training loss's own weights in a Lightning checkpoint: accounted for, not loaded."""
    return DROP if key.startswith(TRAINING_ONLY) else None


CONVERTERS: dict[str, Converter] = {
    "restoreformer": rules_converter(
        "restoreformer", chain(with_prefix("vqvae.", "", network_rule), training_rule, network_rule)
    ),
    "native": lambda sd, extras, cfg: dict(sd),
}


def from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[RestoreFormerConfig, str] | None:
    """``VQVAEGANMultiHeadTransformer`` and its kwargs -> (our config, converter name)."""
    if not official_class.endswith("VQVAEGANMultiHeadTransformer"):
        return None
    if kw.get("double_z", False) or not kw.get("enable_mid", True):
        raise ValueError("RestoreFormer: only the released layout (double_z False, enable_mid True) is supported")
    cfg = RestoreFormerConfig(
        resolution=kw.get("resolution", 512),
        ch=kw.get("ch", 64),
        ch_mult=tuple(kw.get("ch_mult", (1, 2, 2, 4, 4, 8))),
        num_res_blocks=kw.get("num_res_blocks", 2),
        attn_resolutions=tuple(kw.get("attn_resolutions", (16,))),
        z_channels=kw.get("z_channels", 256),
        embed_dim=kw.get("embed_dim", 256),
        n_embed=kw.get("n_embed", 1024),
        heads=kw.get("head_size", 1),
        extra_levels=kw.get("ex_multi_scale_num", 1),
        in_channels=kw.get("in_channels", 3),
        out_ch=kw.get("out_ch", 3),
    )
    return cfg, "restoreformer"
