"""Settings of ``gfr train prior`` and ``gfr train restorer`` (every field is a command-line flag)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PRECISIONS", "TRAINABLE", "PriorConfig", "RestorerConfig"]

PRECISIONS = ("auto", "bf16", "fp32")
TRAINABLE = ("all", "detail")


@dataclass
class PriorConfig:
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
class RestorerConfig:
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
