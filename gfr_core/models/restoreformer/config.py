"""RestoreFormer / RestoreFormer++ config: the constructor arguments of :class:`RestoreFormer`, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ..stylegan2.config import check_power_of_two, check_range

__all__ = ["RestoreFormerConfig"]


@dataclass(frozen=True, kw_only=True)
class RestoreFormerConfig:
    """Defaults: RestoreFormer++ (``RestoreFormer++.ckpt``); RestoreFormer is ``heads=8, extra_levels=0``."""

    resolution: int = 512  # input and output side, a power of two
    ch: int = 64  # base width
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)  # width multiplier per level, finest first
    num_res_blocks: int = 2  # residual blocks per encoder level (the decoder has one more)
    attn_resolutions: tuple[int, ...] = (16,)  # sides (px) with attention after each block
    z_channels: int = 256  # encoder output width
    embed_dim: int = 256  # code width
    n_embed: int = 1024  # codebook size
    heads: int = 4  # attention heads ("head_size" in the release)
    extra_levels: int = 1  # the decoder also attends at this many finer levels ("ex_multi_scale_num")
    in_channels: int = 3  # input image channels
    out_ch: int = 3  # output image channels

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_power_of_two(owner, "resolution", self.resolution, 8, 2048)
        check_range(owner, "ch", self.ch, 1, 1024)
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        if not 1 <= len(self.ch_mult) <= 9 or any(not 1 <= m <= 64 for m in self.ch_mult):
            raise ValueError(f"{owner}: ch_mult must hold 1-9 multipliers in [1, 64], got {self.ch_mult}")
        if self.resolution >> (len(self.ch_mult) - 1) < 1:
            raise ValueError(f"{owner}: {len(self.ch_mult)} levels do not fit a {self.resolution} px input")
        check_range(owner, "num_res_blocks", self.num_res_blocks, 1, 16)
        check_range(owner, "z_channels", self.z_channels, 1, 4096)
        check_range(owner, "embed_dim", self.embed_dim, 1, 4096)
        check_range(owner, "n_embed", self.n_embed, 1, 1 << 20)
        check_range(owner, "heads", self.heads, 1, 64)
        check_range(owner, "extra_levels", self.extra_levels, 0, 8)
        check_range(owner, "in_channels", self.in_channels, 1, 4)
        check_range(owner, "out_ch", self.out_ch, 1, 4)
        widths = {self.ch * m for m in self.ch_mult}
        if any(w % 32 or w % self.heads for w in widths):
            raise ValueError(f"{owner}: every width ({sorted(widths)}) must divide by 32 groups and {self.heads} heads")

    def decoder_attention(self) -> tuple[int, ...]:
        """Sides (px) where the decoder attends: the encoder's, and ``extra_levels`` finer levels above each."""
        return tuple(sorted({r << i for r in self.attn_resolutions for i in range(self.extra_levels + 1)}))
