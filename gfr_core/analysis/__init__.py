"""Tools to look inside the prior and the restorers: sampling, truncation, style mixing, interpolation,
closed-form latent directions (SeFa) and the latents a restorer predicts for a face.

Images are returned as RGB uint8 arrays (N,H,W,3); latents as float tensors.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..io.tensor import from_uint8, to_uint8
from ..models import GFPGAN, GPEN, StyleGAN2Generator
from .projection import project

__all__ = [
    "Variant",
    "ablation_outputs",
    "apply_direction",
    "from_uint8",
    "interpolate",
    "latent_resolutions",
    "layer_groups",
    "predicted_latents",
    "project",
    "sample_latents",
    "sefa_directions",
    "style_mixing_grid",
    "synthesize",
    "tile",
    "to_uint8",
    "z_from_seeds",
]


def tile(images: np.ndarray, ncols: int) -> np.ndarray:
    """Arrange (N,H,W,3) images in rows of ``ncols`` (the last row is padded with white)."""
    n, h, w, c = images.shape
    rows = -(-n // ncols)
    out = np.full((rows * h, ncols * w, c), 255, np.uint8)
    for i, im in enumerate(images):
        r, q = divmod(i, ncols)
        out[r * h : (r + 1) * h, q * w : (q + 1) * w] = im
    return out


def z_from_seeds(seeds: list[int], dim: int) -> Tensor:
    """One N(0,I) z per seed, independent of batch composition: (N,dim)."""
    return torch.stack([torch.randn(dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@torch.no_grad()
def sample_latents(G: StyleGAN2Generator, seeds: list[int], *, psi: float = 1.0) -> Tensor:
    """(N,num_ws,D) truncated w+ for the given seeds."""
    z = z_from_seeds(seeds, G.style_dim).to(G.const.device)
    return G.broadcast(G.truncate(G.map(z), psi))


@torch.no_grad()
def synthesize(G: StyleGAN2Generator, ws: Tensor, *, batch: int = 16) -> np.ndarray:
    """Render (N,num_ws,D) latents with constant noise -> (N,H,W,3) uint8."""
    out = [
        to_uint8(G.synthesis(ws[i : i + batch].to(G.const.device), noise_mode="const"))
        for i in range(0, len(ws), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, G.size, G.size, 3), np.uint8)


def latent_resolutions(num_ws: int) -> list[int]:
    """Resolution each latent index feeds: w0, w1 -> 4; w[2j+1..2j+2] -> 2^(j+3); the last one -> the output."""
    res = [4, 4]
    j = 0
    while len(res) < num_ws:
        res.append(2 ** (j + 3))
        if len(res) < num_ws:
            res.append(2 ** (j + 3))
        j += 1
    return res


def layer_groups(num_ws: int) -> dict[str, range]:
    """Coarse (4-8 px), middle (16-32 px) and fine (64 px and up) latent index ranges."""
    res = latent_resolutions(num_ws)
    mid = next((i for i, r in enumerate(res) if r >= 16), num_ws)
    fine = next((i for i, r in enumerate(res) if r >= 64), num_ws)
    return {"coarse": range(0, mid), "middle": range(mid, fine), "fine": range(fine, num_ws)}


@torch.no_grad()
def style_mixing_grid(G: StyleGAN2Generator, row_ws: Tensor, col_ws: Tensor, layers: range | list[int]) -> np.ndarray:
    """Grid image: row i, column j renders ``row_ws[i]`` with the given layers taken from ``col_ws[j]``.

    The first row shows the column sources and the first column the row sources (top-left blank).
    """
    idx = torch.as_tensor(list(layers), dtype=torch.long)
    cells = []
    for r in row_ws:
        ws = r[None].repeat(len(col_ws), 1, 1).clone()
        ws[:, idx] = col_ws[:, idx]
        cells.append(ws)
    mixed = synthesize(G, torch.cat(cells))
    rows_img, cols_img = synthesize(G, row_ws), synthesize(G, col_ws)
    blank = np.full_like(rows_img[:1], 255)
    grid = [np.concatenate([blank, cols_img])]
    for i in range(len(row_ws)):
        grid.append(np.concatenate([rows_img[i : i + 1], mixed[i * len(col_ws) : (i + 1) * len(col_ws)]]))
    return tile(np.concatenate(grid), len(col_ws) + 1)


@torch.no_grad()
def interpolate(
    G: StyleGAN2Generator, seed_a: int, seed_b: int, *, steps: int = 8, space: Literal["w", "z"] = "w", psi: float = 1.0
) -> np.ndarray:
    """Frames (steps,H,W,3) between two seeds: linear in W, or spherical (slerp) in Z."""
    za, zb = z_from_seeds([seed_a, seed_b], G.style_dim)
    t = torch.linspace(0, 1, steps)
    if space == "w":
        wa, wb = G.map(torch.stack([za, zb]).to(G.const.device))
        w = torch.stack([torch.lerp(wa, wb, float(x)) for x in t])
    else:
        omega = torch.arccos(torch.clamp((za / za.norm()) @ (zb / zb.norm()), -1, 1))
        so = torch.sin(omega)
        z = torch.stack([(torch.sin((1 - x) * omega) / so) * za + (torch.sin(x * omega) / so) * zb for x in t])
        w = G.map(z.to(G.const.device))
    return synthesize(G, G.broadcast(G.truncate(w, psi)))


def sefa_directions(G: StyleGAN2Generator, layers: range | list[int] | None = None) -> tuple[Tensor, Tensor]:
    """Closed-form factorisation (SeFa, Shen & Zhou 2021) of the style affines of the chosen latent layers.

    The directions n maximising ``|A n|^2`` summed over the layers' affine weights A are the top
    eigenvectors of ``sum A^T A``. Returns (eigenvalues descending (D,), directions (D,D) as rows).
    """
    affines = _affines_by_latent(G)
    chosen = range(G.num_ws) if layers is None else layers
    mats = [a for i in chosen for a in affines[i]]
    a = torch.cat([m / m.norm(dim=1, keepdim=True) for m in mats]).detach().double().cpu()
    vals, vecs = torch.linalg.eigh(a.T @ a)
    order = torch.argsort(vals, descending=True)
    return vals[order].float(), vecs[:, order].T.float()


def _affines_by_latent(G: StyleGAN2Generator) -> list[list[Tensor]]:
    """Affine weight matrices (in, D) grouped by the latent index that feeds them."""
    out: list[list[Tensor]] = [[] for _ in range(G.num_ws)]
    out[0].append(G.convs[0].conv.affine.weight)
    out[1].append(G.torgbs[0].conv.affine.weight)
    for j in range(G.log_size - 2):
        i = 2 * j + 1
        out[i].append(G.convs[i].conv.affine.weight)
        out[i + 1].append(G.convs[i + 1].conv.affine.weight)
        out[i + 2].append(G.torgbs[j + 1].conv.affine.weight)
    return out


def apply_direction(ws: Tensor, direction: Tensor, strength: float, layers: range | list[int] | None = None) -> Tensor:
    """Move (N,num_ws,D) latents by ``strength * direction`` (unit-normalised) on the chosen layers."""
    d = direction / direction.norm()
    out = ws.clone()
    idx = list(range(ws.shape[1])) if layers is None else list(layers)
    out[:, idx] += strength * d.to(ws)
    return out


@torch.no_grad()
def predicted_latents(model: GFPGAN | GPEN, faces: np.ndarray) -> Tensor:
    """The w+ (N,num_ws,D) a restorer predicts for aligned uint8 faces (N,S,S,3)."""
    x = from_uint8(faces, next(model.parameters()).device)
    if isinstance(model, GFPGAN):
        return model.encode(x)[0]
    w, _ = model.encode(x)
    return model.generator.broadcast(w)


Variant = Literal["full", "no_sft", "mean_latent", "random_decoder"]
"""Prior ablations of a GFPGAN restorer: the full model; SFT conditions switched off (latents only); the
predicted latents replaced by the decoder's mean latent (spatial features only); the decoder replaced by
a randomly initialised one of the same architecture (seeded). A DetailHead, where the restorer has one,
counts as spatial guidance (as with ``spatial_strength``): it is off in ``no_sft`` and on in the others."""


@torch.no_grad()
def ablation_outputs(model: GFPGAN, faces: np.ndarray, variant: Variant, *, seed: int = 0) -> np.ndarray:
    """Restore aligned uint8 faces (N,S,S,3) with one prior-ablation variant -> (N,S,S,3) uint8."""
    if not isinstance(model, GFPGAN):
        raise TypeError("prior ablations are defined for GFPGAN-style restorers")
    dev = next(model.parameters()).device
    x = from_uint8(faces, dev)
    latents, conditions, _, features = model.encode(x)
    decoder = model.stylegan_decoder
    if variant == "no_sft":
        conditions = None
    elif variant == "mean_latent":
        if not bool(decoder.w_avg.abs().sum()):
            decoder.update_w_avg()
        latents = decoder.w_avg.expand_as(latents)
    elif variant == "random_decoder":
        import copy
        import dataclasses

        decoder = copy.deepcopy(decoder)
        torch.manual_seed(seed)
        fresh = StyleGAN2Generator(**dataclasses.asdict(decoder.config)).to(dev)
        decoder.load_state_dict(fresh.state_dict())
    elif variant != "full":
        raise ValueError(f"unknown variant {variant!r}")
    out = decoder.synthesis(latents, conditions=conditions, sft_half=model.sft_half, noise_mode="const")
    return to_uint8(out if variant == "no_sft" else model.refine(x, out, features))
