"""Official StyleGAN2 layouts (BasicSR, GFPGAN clean, rosinality) -> :class:`StyleGAN2Generator` keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..family import Converter, check_fir, rules_converter
from .config import StyleGAN2Config

__all__ = ["CONVERTERS", "basicsr_rule", "fill_w_avg", "from_official", "mean_w", "rosinality_rule"]


def _flatten_bias(value: Tensor) -> Tensor:
    """(1,C,1,1) -> (C,)."""
    return value.reshape(-1)


def basicsr_rule(key: str, v: Tensor, *, clean: bool):
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


def rosinality_rule(key: str, v: Tensor):
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
            return check_fir(key, v, 4.0)
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
            return check_fir(key, v, 4.0)
        if sub == "bias":
            return f"{layer}.bias", _flatten_bias(v)
    return None


@torch.no_grad()
def mean_w(
    mapping: Mapping[str, Tensor],
    *,
    style_dim: int,
    n_mlp: int,
    lr_mlp: float,
    flavour: str,
    num_samples: int = 8192,
    seed: int = 0,
) -> Tensor:
    """The mean of ``num_samples`` mapped z (seeded): the truncation centre, as ``update_w_avg`` computes it."""
    from .network import MappingNetwork

    net = MappingNetwork(style_dim=style_dim, num_layers=n_mlp, lr_mul=lr_mlp, flavour=flavour)
    net.load_state_dict({k: v.float() for k, v in mapping.items()}, strict=True)
    z = torch.randn(num_samples, style_dim, generator=torch.Generator().manual_seed(seed))
    return net(z).mean(dim=0)


def fill_w_avg(out: dict[str, Tensor], extras: Mapping[str, Tensor], cfg: StyleGAN2Config, *, prefix: str = "") -> None:
    """Add ``{prefix}w_avg``: the checkpoint's ``latent_avg`` when it has one, else the mean of mapped z."""
    key = prefix + "w_avg"
    if key in out:
        return
    sample = next(iter(out.values()), None)
    if "latent_avg" in extras:
        out[key] = extras["latent_avg"].reshape(-1)
    elif sample is not None and sample.device.type == "meta":
        out[key] = torch.empty(cfg.style_dim, device="meta")
    else:
        mp = prefix + "mapping."
        mapping = {k[len(mp) :]: v for k, v in out.items() if k.startswith(mp)}
        out[key] = mean_w(mapping, style_dim=cfg.style_dim, n_mlp=cfg.n_mlp, lr_mlp=cfg.lr_mlp, flavour=cfg.flavour)


CONVERTERS: dict[str, Converter] = {
    "stylegan2_clean": rules_converter("stylegan2_clean", lambda k, v: basicsr_rule(k, v, clean=True), fill_w_avg),
    "stylegan2_basicsr": rules_converter("stylegan2_basicsr", lambda k, v: basicsr_rule(k, v, clean=False), fill_w_avg),
    "stylegan2_rosinality": rules_converter("stylegan2_rosinality", rosinality_rule, fill_w_avg),
}


def _native(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: StyleGAN2Config) -> dict[str, Tensor]:
    """A file written by gfr; files from before ``w_avg`` was a buffer stored it as ``_w_avg``."""
    out = {("w_avg" if k == "_w_avg" else k): v for k, v in sd.items()}
    fill_w_avg(out, extras, cfg)
    return out


CONVERTERS["native"] = _native


def _taps(kw: Mapping[str, Any]) -> tuple[float, ...]:
    return tuple(kw.get("resample_kernel", kw.get("blur_kernel", (1, 3, 3, 1))))


def from_official(official_class: str, kw: Mapping[str, Any]) -> tuple[StyleGAN2Config, str] | None:
    """BasicSR / GFPGAN-clean / rosinality generator class and kwargs -> (our config, converter name).

    A rosinality class whose channel table the fixture scaled (``... channel table scaled``) is 1/16 as wide.
    """
    name = official_class.split(" ")[0]
    if name.endswith("StyleGAN2GeneratorClean") or name.endswith("stylegan2_arch.StyleGAN2Generator"):
        clean = name.endswith("Clean")
        extra = {} if clean else dict(lr_mlp=kw["lr_mlp"], resample_taps=_taps(kw))
        cfg = StyleGAN2Config(
            size=kw["out_size"],
            style_dim=kw["num_style_feat"],
            n_mlp=kw["num_mlp"],
            channel_multiplier=kw["channel_multiplier"],
            narrow=kw["narrow"],
            flavour="clean" if clean else "original",
            **extra,
        )
        return cfg, "stylegan2_clean" if clean else "stylegan2_basicsr"
    if name.startswith("model.Generator"):
        narrow = 1.0 / 16 if "channel table scaled" in official_class else 1.0
        cfg = StyleGAN2Config(
            size=kw["size"],
            style_dim=kw["style_dim"],
            n_mlp=kw["n_mlp"],
            channel_multiplier=kw["channel_multiplier"],
            narrow=narrow,
            lr_mlp=kw.get("lr_mlp", 0.01),
            resample_taps=_taps(kw),
            flavour="original",
        )
        return cfg, "stylegan2_rosinality"
    return None
