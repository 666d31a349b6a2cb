"""The pipeline's ceiling: whole-photo restoration with a *perfect* restorer of resolution S.

A perfect restorer returns, for each aligned crop of a degraded photo, the sharp photo aligned with the
same transform (mapped to the sharp photo's pixels, pixel-centre exact). Whatever it loses on the way to
the photo is the paste's, not the model's. Three results are scored against the sharp photo, on the central
80 % of each face box (PSNR):

* ``bicubic``: the degraded photo upscaled, the reference;
* ``official``: the same perfect crops pasted GFPGAN's way (facexlib's face helper: bilinear warp back,
  a square mask eroded by ``2 * upscale`` and by a twentieth of the face's side, then blurred), over the
  same bicubic background and with the same pixel-centre exact inverse transform as gfr's;
* ``gfr``: :class:`~gfr_core.restore.FaceRestorer` run with the perfect restorer as its network.

With a real ``model`` beside them, ``model`` is its gain through gfr's pipeline and ``share`` the part of
the ceiling it reaches.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ..face import Detection, align_face, detect_faces, inverse_affine
from ..io.tensor import from_uint8
from .image import psnr
from .photo import DEGRADATIONS, Degradation, crop_to_scale, degrade_photo

__all__ = [
    "OracleFace",
    "PerfectRestorer",
    "official_paste",
    "oracle_faces",
    "oracle_report",
    "parse_oracle",
    "perfect_restorer",
    "to_json",
]


class PerfectRestorer(nn.Module):
    """A "network" that maps each known aligned crop to its sharp counterpart (nearest known crop wins).

    Built for one degraded photo by :func:`perfect_restorer`; it accepts the keywords a restorer's forward
    gets from the pipeline and ignores them.
    """

    def __init__(self, keys: np.ndarray, targets: np.ndarray) -> None:
        """Args:
        keys: (N,S,S,3) uint8 RGB, the aligned crops of the degraded photo.
        targets: (N,S,S,3) uint8 RGB, the sharp photo aligned with the same transforms.
        """
        super().__init__()
        self.register_buffer("keys", from_uint8(keys, "cpu"), persistent=False)
        self.register_buffer("targets", from_uint8(targets, "cpu"), persistent=False)

    def forward(self, x: torch.Tensor, *, fused: bool = False, spatial_strength: float = 1.0) -> torch.Tensor:
        """(B,3,S,S) in [-1,1] -> (B,3,S,S) in [-1,1]: the sharp crop of the nearest key."""
        del fused, spatial_strength  # a lookup: nothing to fuse or modulate
        d = torch.cdist(x.flatten(1).float(), self.keys.flatten(1).to(x.device))
        return self.targets.to(x.device)[d.argmin(1)].to(x.dtype)


def _sharp_landmarks(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """Degraded-photo points -> sharp-photo points, pixel-centre exact (an area downscale by ``scale``)."""
    return (np.asarray(landmarks, np.float64) + 0.5) * scale - 0.5


def perfect_restorer(
    sharp: np.ndarray, degraded: np.ndarray, dets: list[Detection], scale: float, face_size: int, zoom: float
) -> PerfectRestorer:
    """The perfect restorer of resolution ``face_size`` for these faces of ``degraded`` (``sharp`` downscaled
    ``scale`` times)."""
    keys = [align_face(degraded, d.landmarks, face_size, zoom=zoom).crop for d in dets]
    targets = [align_face(sharp, _sharp_landmarks(d.landmarks, scale), face_size, zoom=zoom).crop for d in dets]
    return PerfectRestorer(np.stack(keys), np.stack(targets))


def official_paste(canvas: np.ndarray, face: np.ndarray, affine: np.ndarray, upscale: float) -> np.ndarray:
    """GFPGAN's paste (facexlib's face helper) of one restored crop into an upscaled photo, as a new array.

    Bilinear warp back; the crop's square mask eroded by ``2 * upscale`` px, then by ``2 * w`` and blurred
    over ``2 * w + 1`` px, ``w`` a twentieth of the square root of the mask's area. The inverse transform is
    gfr's pixel-centre exact one (facexlib adds ``0.5 * upscale``, half an output pixel off).
    """
    h, w = canvas.shape[:2]
    inv = inverse_affine(affine, upscale)
    s = face.shape[0]
    warped = cv2.warpAffine(face, inv, (w, h), flags=cv2.INTER_LINEAR)
    m = cv2.warpAffine(np.ones((s, s), np.float32), inv, (w, h), flags=cv2.INTER_LINEAR)
    k = max(1, int(2 * upscale))
    m = cv2.erode(m, np.ones((k, k), np.uint8))
    edge = int(float(m.sum()) ** 0.5) // 20
    if edge > 0:
        m = cv2.erode(m, np.ones((2 * edge, 2 * edge), np.uint8))
        m = cv2.GaussianBlur(m, (2 * edge + 1, 2 * edge + 1), 0)
    m = m[..., None]
    out = m * warped.astype(np.float32) + (1 - m) * canvas.astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


PSNR_CAP = float(10 * np.log10(255.0**2 * 12))
"""58.9 dB: the rounding noise of 8-bit pixels. A perfect crop can reproduce a small face exactly; above
this every result is equally perfect."""


def _box_psnr(x: np.ndarray, ref: np.ndarray, box: np.ndarray) -> float:
    """PSNR over the central 80 % of ``box`` (x1, y1, x2, y2 in ``ref``'s pixels), at most :data:`PSNR_CAP`."""
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, 0.4 * (x2 - x1), 0.4 * (y2 - y1)
    h = min(x.shape[0], ref.shape[0])
    w = min(x.shape[1], ref.shape[1])
    ya, yb = int(max(0, round(cy - hh))), int(min(h, round(cy + hh)))
    xa, xb = int(max(0, round(cx - hw))), int(min(w, round(cx + hw)))
    if yb - ya < 4 or xb - xa < 4:
        return float("nan")
    return min(psnr(x[ya:yb, xa:xb, :3], ref[ya:yb, xa:xb, :3]), PSNR_CAP)


@dataclass(frozen=True)
class OracleFace:
    """One face of one photo under one degradation: face PSNR (dB, central 80 % of the box) of each result."""

    photo: str
    degradation: str
    face_px: float  # face box size in the sharp photo
    bicubic: float
    official: float  # the perfect crop, pasted GFPGAN's way
    gfr: float  # the perfect crop, through gfr's pipeline
    model: float | None = None  # a real restorer through gfr's pipeline

    @property
    def official_gain(self) -> float:
        return self.official - self.bicubic

    @property
    def gfr_gain(self) -> float:
        return self.gfr - self.bicubic

    @property
    def model_gain(self) -> float | None:
        return None if self.model is None else self.model - self.bicubic


def parse_oracle(spec: str) -> tuple[int, float]:
    """``"512"`` or ``"64:1.3"`` -> (face size, crop zoom); one clear error otherwise."""
    size, _, zoom = str(spec).partition(":")
    try:
        s, z = int(size), float(zoom) if zoom else 1.0
    except ValueError:
        raise ValueError(f"--oracle takes SIZE[:ZOOM], e.g. 512 or 64:1.3; got {spec!r}") from None
    if not (16 <= s <= 2048 and 0.5 <= z <= 3.0):
        raise ValueError(f"--oracle size must be 16-2048 and zoom 0.5-3, got {spec!r}")
    return s, z


def oracle_faces(
    photos: list[np.ndarray],
    names: list[str],
    *,
    face_size: int,
    zoom: float = 1.0,
    degradations: tuple[Degradation, ...] = DEGRADATIONS,
    model: Any = None,
    composition: Any = None,
    device: str = "cpu",
) -> list[OracleFace]:
    """Score the perfect restorer (both pastes), bicubic and optionally ``model`` on every face.

    Args:
        photos: Sharp (H,W,3) uint8 RGB photos.
        names: Their labels.
        face_size: S of the perfect restorer.
        zoom: Its crop zoom (the template zoom of the model it stands for).
        degradations: How each photo is degraded (each restored at its own scale).
        model: A :class:`~gfr_core.restore.FaceRestorer` to score beside the ceiling (its own S and zoom).
        composition: A :class:`~gfr_core.restore.Composition` for the perfect restorer's pipeline (default:
            the restorer's default).
        device: Where the perfect restorer runs.
    """
    from ..restore import FaceRestorer

    out: list[OracleFace] = []
    for sharp, name in zip(photos, names):
        found = detect_faces(sharp, score_threshold=0.95, min_face_size=24)
        for deg in degradations:
            lq = degrade_photo(sharp, deg)
            k = deg.scale
            dets = [
                Detection(box=(d.box + 0.5) / k - 0.5, landmarks=(d.landmarks + 0.5) / k - 0.5, score=d.score)
                for d in found
            ]
            if not dets:
                continue
            oracle = perfect_restorer(sharp, lq, dets, k, face_size, zoom)
            # the perfect restorer is trusted in full, as the released models are (ModelCard.trust)
            r = FaceRestorer(oracle, face_size=face_size, crop_zoom=zoom, trust=1.0, device=device, name="perfect")
            if composition is not None:
                r.composition = replace(composition)
            res = r(lq, upscale=deg.scale, detections=dets)
            up, ref = res.upscale, crop_to_scale(sharp, deg.scale)
            bic = cv2.resize(lq, (res.image.shape[1], res.image.shape[0]), interpolation=cv2.INTER_CUBIC)
            off = bic
            for f in res.faces:
                off = official_paste(off, f.restored, f.affine, up)
            real = model(lq, upscale=deg.scale, detections=dets).image if model is not None else None
            for d in found:
                out.append(
                    OracleFace(
                        photo=name,
                        degradation=deg.name,
                        face_px=d.size,
                        bicubic=_box_psnr(bic, ref, d.box),
                        official=_box_psnr(off, ref, d.box),
                        gfr=_box_psnr(res.image, ref, d.box),
                        model=None if real is None else _box_psnr(real, ref, d.box),
                    )
                )
    return out


def oracle_report(faces: list[OracleFace], *, title: str = "") -> str:
    """Markdown: one row per photo and degradation (mean over its faces), then the mean per degradation."""
    has_model = any(f.model is not None for f in faces)
    head = "| photo | degradation | faces | bicubic dB | official paste | gfr | gfr / official |"
    sep = "|---|---|---:|---:|---:|---:|---:|"
    if has_model:
        head += " model | model / ceiling |"
        sep += "---:|---:|"
    rows = [title, "", head, sep] if title else [head, sep]

    def row(label: str, deg: str, group: list[OracleFace]) -> str:
        b = np.mean([f.bicubic for f in group])
        og = np.mean([f.official_gain for f in group])
        gg = np.mean([f.gfr_gain for f in group])
        ratio = f"{gg / og:.0%}" if og > 0.05 else "—"
        line = f"| {label} | {deg} | {len(group)} | {b:.2f} | {og:+.2f} | {gg:+.2f} | {ratio} |"
        if has_model:
            mg = np.mean([f.model_gain for f in group])
            share = f"{mg / gg:.0%}" if gg > 0.05 else "—"
            line += f" {mg:+.2f} | {share} |"
        return line

    keys = list(dict.fromkeys((f.photo, f.degradation) for f in faces))
    for photo, deg in keys:
        rows.append(row(photo, deg, [f for f in faces if (f.photo, f.degradation) == (photo, deg)]))
    for deg in dict.fromkeys(f.degradation for f in faces):
        rows.append(row("**mean**", deg, [f for f in faces if f.degradation == deg]))
    rows.append(row("**mean**", "all", faces))
    return "\n".join(rows)


def to_json(faces: list[OracleFace]) -> str:
    """Every face's scores (dB) as JSON."""
    rows = [
        asdict(f) | {"official_gain": f.official_gain, "gfr_gain": f.gfr_gain, "model_gain": f.model_gain}
        for f in faces
    ]
    return json.dumps(rows, indent=1)
