"""Official CodeFormer layout (``params_ema`` of the release's ``.pth``) -> :class:`CodeFormer` keys.

The names are the release's but for two renames onto the shared VQGAN blocks (:mod:`gfr_core.nn.vq`):
a residual block's 1x1 skip ``conv_out`` is ``nin_shortcut``, an attention block's ``norm`` is ``norm1``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from ..family import Converter, rules_converter
from .config import CodeFormerConfig, VQGANConfig

__all__ = ["CONVERTERS", "from_official", "vqgan_from_official"]

_ROOTS = ("position_emb", "encoder.", "generator.", "quantize.", "feat_emb.", "ft_layers.", "idx_pred_layer.")


def official_rule(key: str, v: Tensor):
    """One official key -> ours."""
    if not key.startswith(_ROOTS + ("fuse_convs_dict.",)):
        return None
    key = re.sub(r"\.conv_out\.(weight|bias)$", r".nin_shortcut.\1", key)
    key = re.sub(r"^((?:encoder|generator)\.blocks\.\d+)\.norm\.(weight|bias)$", r"\1.norm1.\2", key)
    return key, v


CONVERTERS: dict[str, Converter] = {
    "codeformer": rules_converter("codeformer", official_rule),
    "native": lambda sd, extras, cfg: dict(sd),
}


def from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[CodeFormerConfig, str] | None:
    """``CodeFormer`` and its kwargs -> (our config, converter name). A reference fixture's small VQGAN is
    read from ``channels_used`` (its ``vqgan_constructor_effective``, and the tap tables, checked against
    the ones this model derives), as the fixture's metadata describes it."""
    if not official_class.endswith("codeformer_arch.CodeFormer"):
        return None
    used = kw.get("channels_used") or {}
    vq = used.get("vqgan_constructor_effective") or {}
    cfg = CodeFormerConfig(
        img_size=vq.get("img_size", 512),
        nf=vq.get("nf", 64),
        ch_mult=tuple(vq.get("ch_mult", (1, 2, 2, 4, 4, 8))),
        res_blocks=vq.get("res_blocks", 2),
        attn_resolutions=tuple(vq.get("attn_resolutions", (16,))),
        codebook_size=kw.get("codebook_size", 1024),
        emb_dim=vq.get("emb_dim", 256),
        dim_embd=kw.get("dim_embd", 512),
        n_head=kw.get("n_head", 8),
        n_layers=kw.get("n_layers", 9),
        connect_list=tuple(kw.get("connect_list", ("32", "64", "128", "256"))),
    )
    if kw.get("latent_size", 256) != cfg.vqgan().latent_side ** 2:
        raise ValueError(
            f"CodeFormer: latent_size {kw.get('latent_size')} is not the {cfg.vqgan().latent_side}^2 code map"
        )
    if vq.get("codebook_size", cfg.codebook_size) != cfg.codebook_size:
        raise ValueError("CodeFormer: the VQGAN's codebook size differs from the transformer's")
    _check_taps(cfg, used)
    return cfg, "codeformer"


def _check_taps(cfg: CodeFormerConfig, used: Mapping[str, Any]) -> None:
    """The fixture's tap tables, where it lists them, must be the block indices this model derives."""
    import torch

    from .network import VQDecoder, VQEncoder

    with torch.device("meta"):
        enc, dec = VQEncoder(config=cfg.vqgan()), VQDecoder(config=cfg.vqgan())
    for name, ours in (("fuse_encoder_block", enc.taps), ("fuse_generator_block", dec.taps)):
        table = used.get(name) or {}
        wrong = {s: i for s, i in table.items() if int(s) in ours and ours[int(s)] != i and s in cfg.connect_list}
        if wrong:
            raise ValueError(f"CodeFormer: {name} {wrong} differs from the derived {ours}")


def vqgan_from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[VQGANConfig, str] | None:
    """``VQAutoEncoder`` (stage I, nearest quantizer) and its kwargs -> (our config, converter name)."""
    if not official_class.endswith("vqgan_arch.VQAutoEncoder"):
        return None
    if kw.get("quantizer", "nearest") != "nearest":
        raise ValueError("VQAutoEncoder: only the nearest-code quantizer (the released one) is supported")
    fields = ("img_size", "nf", "ch_mult", "res_blocks", "attn_resolutions", "codebook_size", "emb_dim")
    cfg = VQGANConfig(**{k: tuple(kw[k]) if isinstance(kw[k], list) else kw[k] for k in fields if k in kw})
    return cfg, "codeformer"
