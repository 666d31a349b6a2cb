"""CodeFormer config: the constructor arguments of :class:`CodeFormer`, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ..stylegan2.config import check_power_of_two, check_range

__all__ = ["CodeFormerConfig", "VQGANConfig"]


@dataclass(frozen=True, kw_only=True)
class VQGANConfig:
    """CodeFormer's stage-I VQGAN (``VQAutoEncoder``). Defaults: ``vqgan_code1024.pth``."""

    img_size: int = 512  # input and output side
    nf: int = 64  # base width
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)  # width multiplier per level, finest first
    res_blocks: int = 2  # residual blocks per level
    attn_resolutions: tuple[int, ...] = (16,)  # sides (px) with attention after each block
    codebook_size: int = 1024  # codes
    emb_dim: int = 256  # code width (the latent's channels)

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_power_of_two(owner, "img_size", self.img_size, 8, 2048)
        check_range(owner, "nf", self.nf, 1, 1024)
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        if not 1 <= len(self.ch_mult) <= 9 or any(not 1 <= m <= 64 for m in self.ch_mult):
            raise ValueError(f"{owner}: ch_mult must hold 1-9 multipliers in [1, 64], got {self.ch_mult}")
        if self.img_size >> (len(self.ch_mult) - 1) < 1:
            raise ValueError(f"{owner}: {len(self.ch_mult)} levels do not fit a {self.img_size} px input")
        check_range(owner, "res_blocks", self.res_blocks, 1, 16)
        check_range(owner, "codebook_size", self.codebook_size, 1, 1 << 20)
        check_range(owner, "emb_dim", self.emb_dim, 1, 4096)
        widths = {self.nf * m for m in self.ch_mult} | {self.emb_dim}
        if any(w % 32 for w in widths):
            raise ValueError(f"{owner}: every width ({sorted(widths)}) must divide by GroupNorm's 32 groups")

    def sides(self) -> list[int]:
        """The side (px) of each level, finest first."""
        return [self.img_size >> i for i in range(len(self.ch_mult))]

    @property
    def latent_side(self) -> int:
        """Side of the code map (16 for the released 512 px models)."""
        return self.sides()[-1]

    def width(self, side: int) -> int:
        """Channels of the level at ``side`` px (the release's ``channels`` table)."""
        return self.nf * self.ch_mult[self.sides().index(side)]


@dataclass(frozen=True, kw_only=True)
class CodeFormerConfig:
    """Defaults: CodeFormer for restoration (``codeformer.pth``). Colourisation and inpainting connect
    ("32", "64", "128"); inpainting's codebook has 512 codes."""

    img_size: int = 512  # input and output side
    nf: int = 64  # base width of the VQGAN
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)  # width multiplier per level, finest first
    res_blocks: int = 2  # residual blocks per level
    attn_resolutions: tuple[int, ...] = (16,)  # sides (px) with attention after each block
    codebook_size: int = 1024  # codes
    emb_dim: int = 256  # code width (the latent's channels)
    dim_embd: int = 512  # transformer width
    n_head: int = 8  # transformer heads
    n_layers: int = 9  # transformer layers
    connect_list: tuple[str, ...] = ("32", "64", "128", "256")  # sides (px) where encoder features are fused

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "connect_list", tuple(str(s) for s in self.connect_list))
        vq = self.vqgan()  # bounds the VQGAN's fields
        object.__setattr__(self, "ch_mult", vq.ch_mult)
        object.__setattr__(self, "attn_resolutions", vq.attn_resolutions)
        check_range(owner, "dim_embd", self.dim_embd, 1, 8192)
        check_range(owner, "n_head", self.n_head, 1, 128)
        check_range(owner, "n_layers", self.n_layers, 0, 64)
        if self.dim_embd % self.n_head:
            raise ValueError(f"{owner}: dim_embd {self.dim_embd} does not split into {self.n_head} heads")
        sides = set(vq.sides())
        if any(not s.isdigit() or int(s) not in sides for s in self.connect_list):
            raise ValueError(f"{owner}: connect_list {self.connect_list} must name sides of its levels {sorted(sides)}")

    def vqgan(self) -> VQGANConfig:
        """The config of its VQGAN (encoder, codebook, generator)."""
        return VQGANConfig(
            img_size=self.img_size,
            nf=self.nf,
            ch_mult=self.ch_mult,
            res_blocks=self.res_blocks,
            attn_resolutions=self.attn_resolutions,
            codebook_size=self.codebook_size,
            emb_dim=self.emb_dim,
        )
