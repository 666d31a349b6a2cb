"""CodeFormer (Zhou et al. NeurIPS 2022): a transformer predicts, from a degraded face, the codes of a VQGAN
codebook of high-quality faces; the VQGAN's decoder renders them, and controllable feature transforms
(weight ``w``) fuse the degraded face's own encoder features back in.

Blocks first (the VQGAN's encoder and generator, the transformer layer, the fuse block), then the net.
The VQGAN keeps the release's flat block lists, so fuse points are block indices as there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...nn.vq import Downsample, SpatialAttention, Upsample, VectorQuantizer, VQResBlock, group_norm
from .config import CodeFormerConfig, VQGANConfig

__all__ = ["CodeFormer", "FuseBlock", "TransformerLayer", "VQAutoEncoder", "VQDecoder", "VQEncoder", "match_statistics"]


def _attention(channels: int) -> SpatialAttention:
    return SpatialAttention(channels=channels, heads=1, query_norm=False)  # CodeFormer's single-head self-attention


class VQEncoder(nn.Module):
    """(B,3,S,S) in [-1,1] -> (B,emb_dim,s,s), s = S / 2^(levels-1); a flat list of blocks, ending with
    GroupNorm and a conv without a swish between them (as released). ``taps[side]``: the block after which
    the feature of that side is kept for fusion (the 2nd residual block of its level)."""

    def __init__(self, *, config: VQGANConfig) -> None:
        super().__init__()
        nf, mult = config.nf, config.ch_mult
        blocks: list[nn.Module] = [nn.Conv2d(3, nf, 3, padding=1)]
        self.taps: dict[int, int] = {}
        width = nf
        for i, side in enumerate(config.sides()):
            for r in range(config.res_blocks):
                blocks.append(VQResBlock(in_channels=width, out_channels=nf * mult[i]))
                width = nf * mult[i]
                if r == min(1, config.res_blocks - 1):
                    self.taps[side] = len(blocks) - 1
                if side in config.attn_resolutions:
                    blocks.append(_attention(width))
            if i < len(mult) - 1:
                blocks.append(Downsample(channels=width))
        blocks += [VQResBlock(in_channels=width, out_channels=width), _attention(width)]
        blocks += [VQResBlock(in_channels=width, out_channels=width), group_norm(width)]
        blocks.append(nn.Conv2d(width, config.emb_dim, 3, padding=1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor, keep: tuple[int, ...] = ()) -> tuple[Tensor, dict[int, Tensor]]:
        """(the code-space feature, {side: feature} of the ``keep`` sides)."""
        at = {self.taps[s]: s for s in keep}
        kept = {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in at:
                kept[at[i]] = x
        return x, kept


class VQDecoder(nn.Module):
    """The VQGAN's generator: (B,emb_dim,s,s) -> (B,3,S,S), not clamped; a flat list of blocks.
    ``taps[side]``: the block after which the fuse block of that side acts (the first residual block of the
    level, after its upsample; at the lowest level its 2nd)."""

    def __init__(self, *, config: VQGANConfig) -> None:
        super().__init__()
        nf, mult, sides = config.nf, config.ch_mult, config.sides()
        width = nf * mult[-1]
        blocks: list[nn.Module] = [nn.Conv2d(config.emb_dim, width, 3, padding=1)]
        blocks += [VQResBlock(in_channels=width, out_channels=width), _attention(width)]
        blocks.append(VQResBlock(in_channels=width, out_channels=width))
        self.taps: dict[int, int] = {}
        for i in reversed(range(len(mult))):
            for r in range(config.res_blocks):
                blocks.append(VQResBlock(in_channels=width, out_channels=nf * mult[i]))
                width = nf * mult[i]
                lowest = i == len(mult) - 1
                if r == (min(1, config.res_blocks - 1) if lowest else 0):
                    self.taps[sides[i]] = len(blocks) - 1
                if sides[i] in config.attn_resolutions:
                    blocks.append(_attention(width))
            if i:
                blocks.append(Upsample(channels=width))
        blocks += [group_norm(width), nn.Conv2d(width, 3, 3, padding=1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        """Codes (B,emb_dim,s,s) -> (B,3,S,S), without fusion (CodeFormer's decode fuses between blocks)."""
        for block in self.blocks:
            x = block(x)
        return x


class VQAutoEncoder(nn.Module):
    """CodeFormer's stage-I VQGAN: (B,3,S,S) in [-1,1] -> its reconstruction through the nearest codes
    (B,3,S,S), not clamped. Trained alone first; CodeFormer then keeps its codebook and generator frozen."""

    def __init__(
        self,
        *,
        img_size: int = 512,  # input and output side
        nf: int = 64,  # base width
        ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8),  # width multiplier per level, finest first
        res_blocks: int = 2,  # residual blocks per level
        attn_resolutions: tuple[int, ...] = (16,),  # sides with attention
        codebook_size: int = 1024,  # codes
        emb_dim: int = 256,  # code width
    ) -> None:
        super().__init__()
        self.config = VQGANConfig(
            img_size=img_size,
            nf=nf,
            ch_mult=tuple(ch_mult),
            res_blocks=res_blocks,
            attn_resolutions=tuple(attn_resolutions),
            codebook_size=codebook_size,
            emb_dim=emb_dim,
        )
        self.out_size = img_size
        self.encoder = VQEncoder(config=self.config)
        self.quantize = VectorQuantizer(n_embed=codebook_size, embed_dim=emb_dim)
        self.generator = VQDecoder(config=self.config)

    def forward(self, x: Tensor) -> Tensor:
        z, _ = self.encoder(x)
        z_q, _, _ = self.quantize(z)
        return self.generator(z_q)


class TransformerLayer(nn.Module):
    """Pre-norm self-attention and MLP over tokens (T,B,D), sequence first; the position embedding is added
    to the queries and keys (not the values) in every layer; exact (erf) GELU."""

    def __init__(self, *, dim: int, heads: int) -> None:  # width D, attention heads
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=0.0)
        self.linear1 = nn.Linear(dim, 2 * dim)
        self.linear2 = nn.Linear(2 * dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h + pos, h + pos, value=h, need_weights=False)[0]
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class FuseBlock(nn.Module):
    """Controllable feature transformation: ``dec + w * (dec * scale + shift)``, scale and shift predicted
    from the encoder's and the decoder's features (B,C,H,W), concatenated in that order."""

    def __init__(self, *, channels: int) -> None:  # C
        super().__init__()
        self.encode_enc = VQResBlock(in_channels=2 * channels, out_channels=channels)
        self.scale = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.shift = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, padding=1)
        )

    def forward(self, enc: Tensor, dec: Tensor, w: float) -> Tensor:
        e = self.encode_enc(torch.cat([enc, dec], dim=1))
        return dec + w * (dec * self.scale(e) + self.shift(e))


def match_statistics(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """``content`` with the per-sample, per-channel mean and standard deviation of ``style`` (unbiased
    variance plus ``eps``, as released)."""

    def stats(t: Tensor) -> tuple[Tensor, Tensor]:
        flat = t.flatten(2)
        return flat.mean(2)[..., None, None], (flat.var(2) + eps).sqrt()[..., None, None]

    (cm, cs), (sm, ss) = stats(content), stats(style)
    return (content - cm) / cs * ss + sm


class CodeFormer(nn.Module):
    """CodeFormer: (B,3,S,S) RGB in [-1,1] -> (B,3,S,S), nominally [-1,1] (not clamped).

    ``w`` in [0, 1] trades quality (0: the codebook's face) against fidelity (1: closest to the input); the
    official default is 0.5, colourisation uses 0 and inpainting 1 without AdaIN.
    """

    def __init__(
        self,
        *,
        img_size: int = 512,  # input and output side
        nf: int = 64,  # VQGAN base width
        ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8),  # VQGAN width multiplier per level, finest first
        res_blocks: int = 2,  # VQGAN residual blocks per level
        attn_resolutions: tuple[int, ...] = (16,),  # VQGAN sides with attention
        codebook_size: int = 1024,  # codes (inpainting: 512)
        emb_dim: int = 256,  # code width
        dim_embd: int = 512,  # transformer width
        n_head: int = 8,  # transformer heads
        n_layers: int = 9,  # transformer layers
        connect_list: tuple[str, ...] = ("32", "64", "128", "256"),  # sides fused (colourisation: to 128)
    ) -> None:
        super().__init__()
        self.config = CodeFormerConfig(
            img_size=img_size,
            nf=nf,
            ch_mult=tuple(ch_mult),
            res_blocks=res_blocks,
            attn_resolutions=tuple(attn_resolutions),
            codebook_size=codebook_size,
            emb_dim=emb_dim,
            dim_embd=dim_embd,
            n_head=n_head,
            n_layers=n_layers,
            connect_list=tuple(connect_list),
        )
        cfg, vq = self.config, self.config.vqgan()
        self.out_size = img_size
        self.position_emb = nn.Parameter(torch.zeros(vq.latent_side**2, dim_embd))
        self.encoder = VQEncoder(config=vq)
        self.quantize = VectorQuantizer(n_embed=codebook_size, embed_dim=emb_dim)
        self.generator = VQDecoder(config=vq)
        self.feat_emb = nn.Linear(emb_dim, dim_embd)
        self.ft_layers = nn.Sequential(*(TransformerLayer(dim=dim_embd, heads=n_head) for _ in range(n_layers)))
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(dim_embd), nn.Linear(dim_embd, codebook_size, bias=False))
        self.fuse_convs_dict = nn.ModuleDict({s: FuseBlock(channels=vq.width(int(s))) for s in cfg.connect_list})

    def encode(self, x: Tensor) -> tuple[Tensor, dict[int, Tensor]]:
        """(B,3,S,S) -> (lq_feat (B,emb_dim,s,s), the encoder features of the fused sides)."""
        return self.encoder(x, keep=tuple(int(s) for s in self.config.connect_list))

    def code_logits(self, lq_feat: Tensor) -> Tensor:
        """The transformer's logits over the codebook, (B, s*s, codebook_size), tokens in row-major order."""
        b = lq_feat.shape[0]
        tokens = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))  # (T,B,D)
        pos = self.position_emb[:, None].expand(-1, b, -1)
        for layer in self.ft_layers:
            tokens = layer(tokens, pos)
        return self.idx_pred_layer(tokens).permute(1, 0, 2)

    def decode(
        self, codes: Tensor, lq_feat: Tensor, feats: dict[int, Tensor], *, w: float = 0.5, adain: bool = True
    ) -> Tensor:
        """Code indices (B, s*s) -> the face (B,3,S,S): the code features (given ``lq_feat``'s statistics if
        ``adain``) through the generator, fused with ``feats`` at strength ``w`` (skipped at ``w = 0``)."""
        b, side = lq_feat.shape[0], lq_feat.shape[-1]
        x = self.quantize.lookup(codes.reshape(-1), (b, side, side))
        if adain:
            x = match_statistics(x, lq_feat)
        fuse_at = {self.generator.taps[int(s)]: int(s) for s in self.config.connect_list}
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if i in fuse_at and w > 0:
                x = self.fuse_convs_dict[str(fuse_at[i])](feats[fuse_at[i]], x, w)
        return x

    def forward(self, x: Tensor, *, w: float = 0.5, adain: bool = True) -> Tensor:
        """The official inference call, ``net(x, w=w, adain=adain)[0]``: the restored face."""
        if not (isinstance(w, (int, float)) and math.isfinite(w) and 0 <= w <= 1):
            raise ValueError(f"CodeFormer: w must be in [0, 1], got {w!r}")
        lq_feat, feats = self.encode(x)
        codes = self.code_logits(lq_feat).argmax(-1)
        return self.decode(codes, lq_feat, feats, w=float(w), adain=adain)
