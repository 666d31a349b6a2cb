"""Settings of ``gfr train prior`` and ``gfr train restorer`` (every field is a command-line flag)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["BOUNDS", "PRECISIONS", "TRAINABLE", "PriorConfig", "RestorerConfig", "check_field"]

PRECISIONS = ("auto", "bf16", "fp32")
TRAINABLE = ("all", "detail")


BOUNDS: dict[str, tuple[float, float]] = {
    "size": (8, 1024),
    "style_dim": (1, 4096),
    "n_mlp": (1, 16),
    "narrow": (1 / 64, 4),
    "zoom": (0.5, 3.0),  # as a checkpoint's crop zoom (gfr_core.hub.checkpoint): no flipped or tiny template
    "batch": (1, 1 << 16),
    "lr": (1e-8, 1.0),
    "r1_gamma": (0, 1e4),
    "r1_every": (1, 1 << 20),
    "mixing_prob": (0, 1),
    "ema_kimg": (0, 1e6),
    "steps": (0, 1 << 40),  # 0: save the starting state (of --init) without a step
    "minutes": (1e-3, 1e6),
    "sample_every": (1, 1 << 40),
    "ckpt_every": (1, 1 << 40),
    "limit": (1, 1 << 40),
    "seed": (0, 2**63 - 1),
    "w_l1": (0, 1e6),
    "w_pyramid": (0, 1e6),
    "w_psnr": (0, 1e6),
    "w_adv": (0, 1e6),
    "w_fm": (0, 1e6),
    "w_perceptual": (0, 1e6),
    "w_identity": (0, 1e6),
    "ema_beta": (0, 0.999999),
    "detail_channels": (0, 1024),
    "detail_blocks": (0, 64),
}
"""The range of every numeric training setting (inclusive); :func:`check_field` enforces it."""


def check_field(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming the flag (``--batch``) and its range when ``value`` is outside
    :data:`BOUNDS`; NaN and infinities are outside every range."""
    if name not in BOUNDS or value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    lo, hi = BOUNDS[name]
    if not (math.isfinite(value) and lo <= value <= hi):
        flag = "--" + name.replace("_", "-")
        span = f">= {lo:g}" if hi >= 1 << 40 else f"between {lo:g} and {hi:g}"
        raise ValueError(f"{flag} must be {span}, got {value!r}")


class _Checked:
    """Every numeric field is checked against :data:`BOUNDS` when the config is made."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            check_field(f.name, getattr(self, f.name))


@dataclass
class PriorConfig(_Checked):
    """Settings of ``gfr train prior``."""

    data: str  # folder with *-train.tar files, a tar, or an image folder
    out: str  # run folder (state.pt, samples, prior.safetensors)
    size: int = 64  # generator resolution
    style_dim: int = 256  # z / w dimensionality
    n_mlp: int = 4  # mapping depth
    narrow: float = 0.125  # width multiplier of the StyleGAN2 channel table
    flavour: str = "original"  # 'original' (equalized learning rate: trains stably) or 'clean'
    zoom: float = 1.3  # alignment template zoom (gfr_core.face.template)
    batch: int = 16  # images per step
    lr: float = 0.002  # Adam learning rate (G and D)
    r1_gamma: float = 0.05  # R1 weight
    r1_every: int = 16  # lazy regularisation interval
    mixing_prob: float = 0.9  # style-mixing regularisation probability
    ema_kimg: float = 5.0  # EMA half-life in thousands of images
    steps: int = 1_000_000  # stop after this many steps in total
    minutes: float = 10.0  # stop this chunk after this many minutes
    sample_every: int = 500  # write a sample grid every N steps
    ckpt_every: int = 200  # save state every N steps
    limit: int | None = None  # use at most this many training photos (smoke tests)
    prealigned: bool = False  # the data are already aligned face crops (skip detection)
    seed: int = 0  # seed of weights and sampling
    device: str = "auto"  # 'cpu', 'cuda' or 'auto'
    precision: str = "auto"  # 'bf16' autocast, 'fp32', or 'auto' (bf16 on CUDA, fp32 on CPU)

    def generator_config(self) -> dict[str, Any]:
        return dict(
            size=self.size,
            style_dim=self.style_dim,
            n_mlp=self.n_mlp,
            channel_multiplier=1,
            narrow=self.narrow,
            flavour=self.flavour,
        )


@dataclass
class RestorerConfig(_Checked):
    """Settings of ``gfr train restorer``."""

    data: str  # as PriorConfig.data
    out: str  # run folder
    prior: str | None = None  # prior checkpoint (prior.safetensors); also gives the architecture
    use_prior: bool = True  # False: the no-prior ablation (random, trainable decoder)
    zoom: float = 1.3  # alignment template zoom
    batch: int = 16  # faces per step
    lr: float = 0.002  # Adam learning rate
    w_l1: float = 1.0  # L1 weight
    w_pyramid: float = 1.0  # auxiliary-RGB pyramid L1 weight
    w_psnr: float = 0.0  # per-image PSNR loss weight (mean of 10*log10(MSE) over the batch; see psnr_loss)
    w_adv: float = 0.05  # adversarial weight
    w_fm: float = 0.5  # discriminator feature-matching weight (with w_adv 0 too, no discriminator is run)
    w_perceptual: float = 0.0  # VGG19 perceptual L1 weight (GFPGAN's layers); > 0 needs torchvision's VGG19 weights
    vgg_weights: str | None = None  # VGG19 weights file (default: $GFR_VGG19_WEIGHTS, then torch's hub cache)
    w_identity: float = 0.0  # ArcFace identity L1 weight (GFPGAN uses 10); > 0 needs GFPGAN's arcface_resnet18.pth
    arcface_weights: str | None = None  # ArcFace weights file (default: $GFR_ARCFACE_WEIGHTS, then torch's hub cache)
    ema_beta: float = 0.998  # EMA of the restorer weights per step (exported); 0 disables
    anneal: bool = False  # cosine-decay the learning rate to 0 over this chunk's minutes (final fine-tuning)
    degradation: str = "gfpgan"  # degradation preset
    steps: int = 1_000_000  # stop after this many steps in total
    minutes: float = 10.0  # stop this chunk after this many minutes
    ckpt_every: int = 200  # save state every N steps
    limit: int | None = None  # use at most this many training photos
    prealigned: bool = False  # the data are already aligned face crops (skip detection)
    seed: int = 0  # seed
    device: str = "auto"  # 'cpu', 'cuda' or 'auto'
    precision: str = "auto"  # 'bf16' autocast, 'fp32', or 'auto' (bf16 on CUDA, fp32 on CPU)
    detail_channels: int = 32  # width of the full-resolution DetailHead (0: the released GFPGAN layout)
    detail_blocks: int = 0  # ContextBlocks in the DetailHead (--init from a restorer with fewer starts them at zero)
    init: str | None = None  # start a new run from these restorer weights; only the DetailHead may be missing
    trainable: str = "all"  # 'all', or 'detail': only the DetailHead trains (U-Net and decoder run without gradients)
    # Architecture when there is no prior to copy it from (use_prior=False without --prior).
    arch: dict[str, Any] = field(default_factory=dict)
