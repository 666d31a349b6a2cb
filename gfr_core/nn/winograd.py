"""Winograd F(4x4, 3x3) convolution: a 3x3, stride-1, 'same' convolution with 4x fewer multiplications.

The input is cut into overlapping 6x6 tiles (stride 4). Each tile ``d`` and the 3x3 filter ``g`` are
mapped to 6x6 transforms, ``V = B^T d B`` and ``U = G g G^T``; the 36 transform positions are then 36
independent channel matmuls ``M = V @ U`` (the only multiplications that grow with the channel
count), and each 4x4 output tile is ``A^T M A`` (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", CVPR 2016; interpolation points 0, +-1, +-2 and infinity).

That is 36 multiply-adds per 16 outputs and channel pair instead of 144, paid for by the two tile
transforms, each written as one small matmul (a Kronecker product of the 1-D transforms) plus one
gather or scatter pass. The tiles are processed a few rows at a time, so that each chunk's transforms
stay in cache (over the whole map at 128 px and above they would stream from memory). It pays where
the channel matmuls dominate, the layers of >= 128 channels at 8-256 px of a 512 px
GFPGAN/StyleGAN2, eager or compiled (:func:`winograd_pays`). The fp32 result differs from
``F.conv2d`` by rounding only (below 1e-4 at unit-scale outputs, tests/test_winograd.py), so it is an
inference formulation chosen per layer by :func:`gfr_core.restore.optimize_for_inference`, never a
change of the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["winograd_filter", "conv3x3_winograd", "winograd_pays", "winograd_filter_if_pays"]

# Transform matrices of F(4,3). Rows of B^T map a 6-sample input strip to its transform; rows of A^T
# map a transformed 6-strip to 4 outputs; G maps 3 filter taps to 6.
_BT = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))
_G = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
_TILE = 4  # output tile edge
_WIN = 6  # input tile edge (_TILE + 3 - 1)
_CHUNK_BYTES = 8 << 20  # tile transforms (36 x tiles x C) per chunk of tile rows, sized to stay in cache


def winograd_pays(in_channels: int, out_channels: int, shape: tuple[int, ...] | None = None) -> bool:
    """Whether F(4,3) beats oneDNN's direct 3x3 conv for this layer on the bench CPU.

    Measured per layer with tiles in chunks of ``_CHUNK_BYTES`` (conv + bias, one face, median of 9,
    eager; benchmarks/RESULTS.md): 512->512 at 16-64 px 1.5-3x faster, 512->256 and 256->256 at 128 px
    about 2x, 256->128 at 128 / 256 px 1.2-1.5x, 128->128 at 128 / 256 px 1.0-1.35x (and 2-3 % on the whole
    512 px network, twice); layers with 64 channels lose (their transforms cost more than the channel
    matmuls save). Hence: at least 128 input and output channels, and no 4x4 maps (a single padded tile).

    Args:
        in_channels / out_channels: The conv's channels.
        shape: The (B,C,H,W) input shape, when known (at run time).
    """
    if in_channels < 128 or out_channels < 128:
        return False
    return shape is None or min(shape[2:]) >= 8


def winograd_filter(weight: Tensor) -> Tensor:
    """(K,C,3,3) conv weight -> (36,C,K) transformed filter ``G g G^T``, one (C,K) matrix per position."""
    k, c = weight.shape[:2]
    g = torch.tensor(_G, dtype=weight.dtype, device=weight.device)
    u = torch.einsum("ij,kcjl,ml->imck", g, weight, g)  # (6,6,C,K)
    return u.reshape(_WIN * _WIN, c, k)


def winograd_filter_if_pays(weight: Tensor) -> Tensor | None:
    """The transformed filter of a (K,C,k,k) stride-1 conv weight if it is 3x3 and its channels pay, else None.

    Computed without autograd, in fp32, and returned contiguous in the weight's dtype: the
    ``winograd_u`` buffer a layer keeps for inference (see ``ConvLayer.use_winograd``).
    """
    if weight.shape[-2:] != (3, 3) or not winograd_pays(weight.shape[1], weight.shape[0]):
        return None
    with torch.no_grad():
        return winograd_filter(weight.float()).to(weight.dtype).contiguous()


def _kron_transforms(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """(36,36) ``B^T (x) B^T`` and (16,36) ``A^T (x) A^T``: the 2-D tile transforms as one matrix each.

    With tiles flattened row-major, ``vec(B^T d B) = (B^T (x) B^T) vec(d)``, so each transform is a
    single small matmul over all tiles and channels at once.
    """
    bt = torch.tensor(_BT, dtype=dtype, device=device)
    at = torch.tensor(_AT, dtype=dtype, device=device)
    return torch.kron(bt, bt), torch.kron(at, at)


def conv3x3_winograd(x: Tensor, u: Tensor, bias: Tensor | None = None, *, chunk_bytes: int = _CHUNK_BYTES) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` computed with Winograd F(4,3).

    Args:
        x: (B,C,H,W) input, any H and W (edge tiles are zero-padded and cropped). Channels-last memory
            avoids a transpose.
        u: (36,C,K) transformed filter, ``winograd_filter(weight)``: computed once per weight (at
            inference set-up), since for a wide layer it costs as much as the convolution it saves.
        bias: optional (K,) bias.
        chunk_bytes: Size of the tile transforms (36 x tiles x C) computed at once; rows of tiles are
            grouped up to it (at least one row).

    Returns:
        (B,K,H,W) in channels-last memory.
    """
    b, c, h, w = x.shape
    k = u.shape[2]
    if u.shape[:2] != (_WIN * _WIN, c):
        raise ValueError(
            f"conv3x3_winograd needs a (36,{c},K) transformed filter from winograd_filter(weight), got {tuple(u.shape)}"
        )
    nh, nw = -(-h // _TILE), -(-w // _TILE)
    kb, ka = _kron_transforms(x.dtype, x.device)
    u = u.to(x.dtype)
    bias = None if bias is None else bias.to(x.dtype)
    xh = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, _TILE * nw + 1 - w, 1, _TILE * nh + 1 - h))  # (B,Hp,Wp,C)
    # Rows of tiles in chunks whose transforms stay in cache (the whole map's would stream from memory).
    rows = max(1, chunk_bytes // (_WIN * _WIN * b * nw * c * x.element_size()))
    out = x.new_empty(b, _TILE * nh, _TILE * nw, k)
    for r0 in range(0, nh, rows):
        r = min(rows, nh - r0)
        tiles = xh[:, _TILE * r0 : _TILE * (r0 + r) + 2].unfold(1, _WIN, _TILE).unfold(2, _WIN, _TILE)  # (B,r,nw,C,6,6)
        d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(_WIN * _WIN, -1)  # (36, B*r*nw*C): one gather
        v = (kb @ d).reshape(_WIN * _WIN, -1, c)  # (36,T,C) = B^T d B per tile
        m = torch.bmm(v, u)  # (36,T,K): the channel matmuls
        y = (ka @ m.reshape(_WIN * _WIN, -1)).reshape(_TILE, _TILE, b, r, nw, k)  # A^T M A per tile
        y = y.permute(2, 3, 0, 4, 1, 5).reshape(b, _TILE * r, _TILE * nw, k)  # tiles back in place
        out[:, _TILE * r0 : _TILE * (r0 + r)] = y if bias is None else y + bias
    return out[:, :h, :w].permute(0, 3, 1, 2)  # edge tiles cropped
