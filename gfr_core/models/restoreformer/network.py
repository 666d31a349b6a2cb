"""RestoreFormer and RestoreFormer++ (Wang et al. CVPR 2022; TPAMI 2023): a VQGAN whose decoder queries the
degraded face's own encoder features with cross-attention, over a codebook of high-quality face parts.

Blocks first (the encoder and the decoder), then the net. Parameter names are the release's
(``vqvae.`` stripped), so its checkpoints load through a converter that only unwraps them.
"""

from __future__ import annotations

from torch import Tensor, nn

from ...nn.vq import Downsample, SpatialAttention, Upsample, VectorQuantizer, VQResBlock, group_norm, swish
from .config import RestoreFormerConfig

__all__ = ["RestoreFormer", "RestoreFormerDecoder", "RestoreFormerEncoder"]


class _Level(nn.Module):
    """One resolution of the encoder or decoder: residual blocks, each followed by attention where the level
    attends, and a resampling at its end (absent at the last level)."""

    def __init__(
        self, *, in_ch: int, out_ch: int, blocks: int, attend: bool, heads: int, resample: type | None
    ) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            VQResBlock(in_channels=in_ch if i == 0 else out_ch, out_channels=out_ch) for i in range(blocks)
        )
        self.attn = nn.ModuleList(
            SpatialAttention(channels=out_ch, heads=heads) for _ in range(blocks if attend else 0)
        )
        if resample is Downsample:
            self.downsample = Downsample(channels=out_ch)
        elif resample is Upsample:
            self.upsample = Upsample(channels=out_ch)


class _Mid(nn.Module):
    """block_1 -> attention -> block_2 at the lowest resolution."""

    def __init__(self, *, channels: int, heads: int) -> None:
        super().__init__()
        self.block_1 = VQResBlock(in_channels=channels, out_channels=channels)
        self.attn_1 = SpatialAttention(channels=channels, heads=heads)
        self.block_2 = VQResBlock(in_channels=channels, out_channels=channels)


class RestoreFormerEncoder(nn.Module):
    """(B,3,R,R) in [-1,1] -> the features the decoder queries, by the release's names: ``in``, ``block_i``
    (level i before its downsample), ``block_{last}_atten`` (mid.block_1), ``mid_atten`` and ``out``
    ((B,z_channels,R/2^(L-1),R/2^(L-1)))."""

    def __init__(self, *, config: RestoreFormerConfig) -> None:
        super().__init__()
        c, mult = config.ch, config.ch_mult
        self.conv_in = nn.Conv2d(config.in_channels, c, 3, padding=1)
        levels, side, width = [], config.resolution, c
        for i, m in enumerate(mult):
            last = i == len(mult) - 1
            levels.append(
                _Level(
                    in_ch=width,
                    out_ch=c * m,
                    blocks=config.num_res_blocks,
                    attend=side in config.attn_resolutions,
                    heads=config.heads,
                    resample=None if last else Downsample,
                )
            )
            width, side = c * m, side if last else side // 2
        self.down = nn.ModuleList(levels)
        self.mid = _Mid(channels=width, heads=config.heads)
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, config.z_channels, 3, padding=1)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        hs = {"in": (h := self.conv_in(x))}
        for i, level in enumerate(self.down):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if hasattr(level, "downsample"):
                hs[f"block_{i}"] = h
                h = level.downsample(h)
        h = self.mid.block_1(h)
        hs[f"block_{len(self.down) - 1}_atten"] = h  # the release names it after the last level's index
        h = self.mid.block_2(self.mid.attn_1(h))
        hs["mid_atten"] = h
        hs["out"] = self.conv_out(swish(self.norm_out(h)))
        return hs


class RestoreFormerDecoder(nn.Module):
    """(B,z_channels,r,r) codes and the encoder's features -> (B,3,R,R), not clamped. Each attention block
    of a level queries the encoder's feature of that level (the lowest level: the encoder's mid.block_1)."""

    def __init__(self, *, config: RestoreFormerConfig) -> None:
        super().__init__()
        c, mult, n = config.ch, config.ch_mult, len(config.ch_mult)
        width = c * mult[-1]
        side = config.resolution >> (n - 1)
        self.conv_in = nn.Conv2d(config.z_channels, width, 3, padding=1)
        self.mid = _Mid(channels=width, heads=config.heads)
        attend = config.decoder_attention()
        levels: list[nn.Module] = [nn.Identity()] * n
        for i in reversed(range(n)):  # lowest resolution first; stored by level index (0 = finest)
            levels[i] = _Level(
                in_ch=width,
                out_ch=c * mult[i],
                blocks=config.num_res_blocks + 1,
                attend=side in attend,
                heads=config.heads,
                resample=Upsample if i else None,
            )
            width, side = c * mult[i], side * 2 if i else side
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(width)
        self.conv_out = nn.Conv2d(width, config.out_ch, 3, padding=1)

    def forward(self, z: Tensor, hs: dict[str, Tensor]) -> Tensor:
        h = self.mid.block_1(self.conv_in(z))
        h = self.mid.block_2(self.mid.attn_1(h, hs["mid_atten"]))
        for i in reversed(range(len(self.up))):
            level = self.up[i]
            source = hs.get(f"block_{i}_atten", hs.get(f"block_{i}"))
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h, source)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class RestoreFormer(nn.Module):
    """RestoreFormer(++): (B,3,R,R) RGB in [-1,1] -> (B,3,R,R), nominally [-1,1] (not clamped).

    ``forward`` returns the restored face, as the official inference uses it; :meth:`encode`,
    :meth:`quantize_codes` and :meth:`decode` expose the stages (the codes, the distances, the features).
    """

    def __init__(
        self,
        *,
        resolution: int = 512,  # input and output side
        ch: int = 64,  # base width
        ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8),  # width multiplier per level, finest first
        num_res_blocks: int = 2,  # residual blocks per encoder level
        attn_resolutions: tuple[int, ...] = (16,),  # sides with attention
        z_channels: int = 256,  # encoder output width
        embed_dim: int = 256,  # code width
        n_embed: int = 1024,  # codebook size
        heads: int = 4,  # attention heads (RestoreFormer: 8)
        extra_levels: int = 1,  # finer decoder levels that attend too (RestoreFormer: 0)
        in_channels: int = 3,  # input channels
        out_ch: int = 3,  # output channels
    ) -> None:
        super().__init__()
        self.config = RestoreFormerConfig(
            resolution=resolution,
            ch=ch,
            ch_mult=tuple(ch_mult),
            num_res_blocks=num_res_blocks,
            attn_resolutions=tuple(attn_resolutions),
            z_channels=z_channels,
            embed_dim=embed_dim,
            n_embed=n_embed,
            heads=heads,
            extra_levels=extra_levels,
            in_channels=in_channels,
            out_ch=out_ch,
        )
        self.out_size = resolution
        self.encoder = RestoreFormerEncoder(config=self.config)
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.quantize = VectorQuantizer(n_embed=n_embed, embed_dim=embed_dim)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        self.decoder = RestoreFormerDecoder(config=self.config)

    def encode(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """(B,3,R,R) in [-1,1] -> (the pre-quantisation map (B,embed_dim,r,r), the encoder's features)."""
        hs = self.encoder(x)
        return self.quant_conv(hs["out"]), hs

    def quantize_codes(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(z_q, code indices (B*r*r,), squared distances (B*r*r, n_embed)) of a pre-quantisation map."""
        return self.quantize(z)

    def decode(self, z_q: Tensor, hs: dict[str, Tensor]) -> Tensor:
        """Codes (B,embed_dim,r,r) and the encoder's features -> (B,3,R,R)."""
        return self.decoder(self.post_quant_conv(z_q), hs)

    def forward(self, x: Tensor) -> Tensor:
        z, hs = self.encode(x)
        z_q, _, _ = self.quantize_codes(z)
        return self.decode(z_q, hs)
