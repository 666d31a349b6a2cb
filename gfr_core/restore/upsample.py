"""Tiled super-resolution of a photo, or of a box of it, with an x4 network such as Real-ESRGAN (pure functions).

The network runs on input tiles with ``pad`` pixels of context on each side, and only each tile's
centre is kept, so there are no seams and the working memory is that of one tile whatever the photo's
size. Each output tile is resampled from the network's x4 result with the exact pixel-centre map of the
requested output size (antialiased when the output is smaller than x4), so an upscale of 2 or 2.5 lines
up with the bicubic background pixel for pixel, and a box of the output equals the same box of the
whole upscaled photo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

__all__ = ["Tiling", "add_face_detail", "upsample_photo", "upsample_tiles"]

Progress = Callable[[int, int], None]
"""Called as ``progress(tiles_done, tiles_total)`` after each tile."""


@dataclass(frozen=True)
class Tiling:
    """How a photo is cut for the network."""

    tile: int = 128  # output-independent tile side, in input pixels (memory: one tile at a time)
    pad: int = 16  # context on each side of a tile, in input pixels (thrown away after the forward)

    def __post_init__(self) -> None:
        if not (16 <= self.tile <= 2048 and 0 <= self.pad <= 128):
            raise ValueError(f"tiling out of range (tile 16..2048, pad 0..128): {self}")

    @classmethod
    def for_device(cls, device: str | torch.device) -> Tiling:
        """Bigger tiles where memory is plentiful (a CUDA device): fewer forwards, same result."""
        return cls(tile=384, pad=32) if torch.device(device).type == "cuda" else cls()


def upsample_tiles(
    out_size: tuple[int, int], in_size: tuple[int, int], tiling: Tiling, box: tuple[int, int, int, int] | None = None
) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """The work list: (output tile box, padded input box) pairs of the tiles that meet ``box`` of the output.

    Boxes are (x0, y0, x1, y1), end-exclusive. ``out_size`` and ``in_size`` are (W, H).
    """
    (ow, oh), (w, h) = out_size, in_size
    bx0, by0, bx1, by1 = box if box is not None else (0, 0, ow, oh)
    sx, sy = ow / w, oh / h
    step_x, step_y = max(1, round(tiling.tile * sx)), max(1, round(tiling.tile * sy))
    out = []
    # one global grid, whatever the box: a box of the output is exactly that box of the whole upscale
    for oy0 in range(by0 // step_y * step_y, by1, step_y):
        oy1 = min(oy0 + step_y, oh)
        for ox0 in range(bx0 // step_x * step_x, bx1, step_x):
            ox1 = min(ox0 + step_x, ow)
            # input pixels whose neighbourhood the output tile samples, then the context pad
            ix0 = math.floor((ox0 + 0.5) / sx - 0.5) - 1 - tiling.pad
            ix1 = math.ceil((ox1 - 0.5) / sx - 0.5) + 2 + tiling.pad
            iy0 = math.floor((oy0 + 0.5) / sy - 0.5) - 1 - tiling.pad
            iy1 = math.ceil((oy1 - 0.5) / sy - 0.5) + 2 + tiling.pad
            out.append(((ox0, oy0, ox1, oy1), (max(ix0, 0), max(iy0, 0), min(ix1, w), min(iy1, h))))
    return out


@torch.inference_mode()
def _x4(net: nn.Module, rgb: np.ndarray, device: torch.device) -> np.ndarray:
    """(h,w,3) uint8 -> (4h,4w,3) float32 in [0,255] (not rounded)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb)).to(device).permute(2, 0, 1)[None].float() / 255.0
    y = net(x).clamp_(0, 1).mul_(255.0)
    return y[0].permute(1, 2, 0).float().cpu().numpy()


def upsample_photo(
    net: nn.Module,
    rgb: np.ndarray,
    out_size: tuple[int, int],
    *,
    box: tuple[int, int, int, int] | None = None,
    tiling: Tiling | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Upscale ``rgb`` to ``out_size`` with an x4 network, tile by tile; or only the ``box`` of that output.

    Args:
        net: Maps (1,3,h,w) RGB in [0,1] to (1,3,4h,4w) (:class:`gfr_core.models.RRDBNet`, scale 4).
        rgb: (H,W,3) uint8 RGB photo.
        out_size: (W', H') of the whole output; any size between 1x and 8x of the photo.
        box: (x0, y0, x1, y1) of the output to compute (default: all of it).
        tiling: Tile and context sizes (default: :meth:`Tiling.for_device` of the network's device).
        progress: Called after each tile with (done, total).

    Returns:
        (y1-y0, x1-x0, 3) uint8: that box of the upscaled photo.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H,W,3) uint8 RGB in [0,255], got {rgb.shape} {rgb.dtype}")
    device = next(net.parameters()).device
    tiling = tiling or Tiling.for_device(device)
    h, w = rgb.shape[:2]
    ow, oh = out_size
    bx0, by0, bx1, by1 = box if box is not None else (0, 0, ow, oh)
    out = np.empty((by1 - by0, bx1 - bx0, 3), np.uint8)
    work = upsample_tiles(out_size, (w, h), tiling, (bx0, by0, bx1, by1))
    kx, ky = 4 * w / ow, 4 * h / oh  # x4-space pixels per output pixel
    for done, ((ox0, oy0, ox1, oy1), (ix0, iy0, ix1, iy1)) in enumerate(work, 1):
        up = _x4(net, rgb[iy0:iy1, ix0:ix1], device)
        k = max(kx, ky)
        if k > 1.01:  # antialias before sampling fewer pixels than the x4 result holds
            sigma = 0.5 * math.sqrt(k * k - 1)
            up = cv2.GaussianBlur(up, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        # output pixel centre X -> x4 coordinate (X + 0.5) * kx - 0.5, relative to this tile's input origin
        m = np.array([[kx, 0, (ox0 + 0.5) * kx - 0.5 - 4 * ix0], [0, ky, (oy0 + 0.5) * ky - 0.5 - 4 * iy0]], np.float64)
        tile = cv2.warpAffine(
            up,
            m,
            (ox1 - ox0, oy1 - oy0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        cx0, cy0, cx1, cy1 = max(ox0, bx0), max(oy0, by0), min(ox1, bx1), min(oy1, by1)  # the part inside the box
        out[cy0 - by0 : cy1 - by0, cx0 - bx0 : cx1 - bx0] = np.clip(
            np.round(tile[cy0 - oy0 : cy1 - oy0, cx0 - ox0 : cx1 - ox0]), 0, 255
        ).astype(np.uint8)
        if progress is not None:
            progress(done, len(work))
    return out


def add_face_detail(
    upsampler: nn.Module,
    canvas: np.ndarray,
    rgb: np.ndarray,
    faces: list,
    masks: list[np.ndarray],
    *,
    tiling: Tiling,
    detail_sigma: float,
    strength: float = 1.0,
    progress: Progress | None = None,
) -> np.ndarray:
    """Blend ``upsampler``'s upscale of ``rgb`` into ``canvas`` inside each face's mask, ``strength`` times.

    Only faces that land larger than the restorer's crop are touched (elsewhere the crop resolves more than
    the photo), only the band above the crop's resolution is taken (``detail_sigma`` crop px), and only
    the mask's footprint is upsampled.

    Args:
        canvas: (H',W',3) uint8, ``rgb`` upscaled (bicubic).
        rgb: (H,W,3) uint8, the photo.
        faces: Faces of ``rgb`` (their ``affine``: photo -> aligned crop).
        masks: (S,S) blend mask per face.
    """
    from ..face import affine_scale, warp_mask
    from .compose import fine_detail_change

    h, w = rgb.shape[:2]
    oh, ow = canvas.shape[:2]
    upscale = ow / w
    out = canvas.copy()
    for face, mask in zip(faces, masks, strict=True):
        shrink = affine_scale(face.affine)  # crop px per input px
        if upscale / shrink <= 1.0:  # the face is no larger than the crop: the restorer resolves it all
            continue
        placed = warp_mask(mask, face.affine, upscale=upscale, shape=(oh, ow))
        if placed is None:
            continue
        (x0, y0, x1, y1), m = placed
        up = upsample_photo(upsampler, rgb, (ow, oh), box=(x0, y0, x1, y1), tiling=tiling, progress=progress)
        # only the band above the restorer's resolution: below it the face is the input's plus the correction
        sigma = detail_sigma * upscale / shrink  # output px
        region = out[y0:y1, x0:x1]
        detail = fine_detail_change(up, region, sigma=sigma)
        m = (m * strength)[..., None]
        out[y0:y1, x0:x1] = np.clip(np.round(region + m * detail), 0, 255).astype(np.uint8)
    return out
