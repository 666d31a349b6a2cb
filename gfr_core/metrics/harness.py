"""Evaluation: degrade ground-truth faces with a fixed seed, restore, and measure PSNR, SSIM and LMD.

* PSNR (dB) and SSIM (Gaussian window 11, sigma 1.5, on the luma channel, as in Wang et al. 2004) against
  the clean aligned face.
* LMD: mean distance between MTCNN's five landmarks on the output and on the ground truth, in pixels
  of the face crop (faces are enlarged 4x for detection and the distances scaled back). Images where
  MTCNN finds no face in the ground truth are left out of LMD; a restored face where it finds none
  counts with the distance of the template's eye spacing (a failure must not look like a success).
* Baselines on the same inputs: plain bicubic (the degraded face itself, which is resized back to the face
  size with bicubic interpolation) and, when given, another model (the no-prior ablation).

Measured when their weights are on disk (nothing downloads; otherwise the metric is listed in
``unavailable`` with the file to put where):

* LPIPS (AlexNet, v0.1; :class:`gfr_core.models.vgg.LPIPS`), per image, lower is better.
* FID (:mod:`gfr_core.metrics.fid`) of each method's outputs against the clean faces, one value per method,
  lower is better. pytorch-fid's Inception weights are preferred; torchvision's are used when only they
  are present (the result says which). With ~1,000 faces the value is biased upwards: compare methods
  with each other, not with published FID.
* ArcFace identity (:mod:`gfr_core.metrics.identity`, GFPGAN's identity network): cosine similarity between the
  embeddings of output and ground truth, per image, higher is better.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data import aligned_faces, split_sources
from ..data import degrade as dg
from .fid import fid_from_features
from .identity import identity_similarity
from .image import face_landmarks, landmark_distance, psnr, ssim
from .perceptual import lpips_distances

__all__ = ["EvalResult", "degradation_sweep", "degrade_face", "evaluate", "load_eval_faces", "restore_all"]


@dataclass(frozen=True)
class EvalResult:
    """Metrics of every method on the same degraded faces."""

    data: str
    preset: str
    seed: int
    num_images: int
    methods: dict[
        str, dict[str, Any]
    ]  # name -> {"psnr", "ssim", "lmd", "lmd_images", ["lpips", "fid", "identity"], "per_image"}
    unavailable: dict[str, str] = field(default_factory=dict)  # metric -> why it was not measured
    fid_weights: str | None = None  # which Inception weights the FID used ("inception-fid" or "inception")

    def to_json(self, *, per_image: bool = True) -> str:
        methods = {
            k: (v if per_image else {m: x for m, x in v.items() if m != "per_image"}) for k, v in self.methods.items()
        }
        return json.dumps(
            dict(
                data=self.data,
                preset=self.preset,
                seed=self.seed,
                num_images=self.num_images,
                methods=methods,
                unavailable=self.unavailable,
                fid_weights=self.fid_weights,
            ),
            indent=1,
        )

    def table(self) -> str:
        extra = [
            (k, h, f)
            for k, h, f in (("lpips", "LPIPS", "7.4f"), ("fid", "FID", "7.2f"), ("identity", "ID cos", "7.4f"))
            if all(k in m for m in self.methods.values())
        ]
        rows = [f"{'method':<28} {'PSNR dB':>8} {'SSIM':>7} {'LMD px':>7}" + "".join(f" {h:>7}" for _, h, _ in extra)]
        for name, m in self.methods.items():
            rows.append(
                f"{name:<28} {m['psnr']:8.2f} {m['ssim']:7.4f} {m['lmd']:7.3f}"
                + "".join(f" {m[k]:{f}}" for k, _, f in extra)
            )
        return "\n".join(rows)


def _metric_nets(device: str, *, lpips: bool, fid: bool, identity: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The metric networks whose weights are on disk ({"lpips", "fid", "identity"} -> net) and why the others are not."""
    from ..models.arcface import ResNetArcFace
    from ..models.inception import InceptionFeatures
    from ..models.local_weights import WeightsNotFound
    from ..models.vgg import LPIPS

    nets: dict[str, Any] = {}
    why = {k: "not requested" for k, on in (("lpips", lpips), ("fid", fid), ("identity", identity)) if not on}
    if lpips:
        try:
            nets["lpips"] = LPIPS.from_files("alex").to(device)
        except WeightsNotFound as e:
            why["lpips"] = str(e)
    if fid:
        try:
            nets["fid"] = InceptionFeatures.from_file("inception-fid").to(device)
        except WeightsNotFound as e:
            try:  # torchvision's ImageNet Inception: an FID, though not comparable with published ones
                nets["fid"] = InceptionFeatures.from_file("inception").to(device)
            except WeightsNotFound:
                why["fid"] = str(e)
    if identity:
        try:
            nets["identity"] = ResNetArcFace.from_file().to(device)
        except WeightsNotFound as e:
            why["identity"] = str(e)
    return nets, why


def load_eval_faces(
    data: str | Path, *, size: int, zoom: float, limit: int | None = None, split: str = "val"
) -> tuple[np.ndarray, list[str]]:
    """Clean faces of a split, aligned like the pipeline does and resized to ``size``: ((N,S,S,3) uint8, names)."""
    faces, names = aligned_faces(split_sources(data, split), size=128, zoom=zoom, progress=False, max_faces=limit)
    gts = np.stack(
        [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) if f.shape[0] != size else f for f in faces]
    )
    return gts, names


def evaluate(
    models: list[str],
    data: str | Path,
    *,
    preset: str = "gfpgan",
    seed: int = 0,
    limit: int | None = None,
    split: str = "val",
    device: str = "cpu",
    lpips: bool = True,
    fid: bool = True,
    identity: bool = True,
) -> EvalResult:
    """Evaluate restorers (names or checkpoint paths) plus the bicubic baseline on one split.

    All models must share face size and template zoom (they see the same degraded inputs). ``lpips``,
    ``fid``, ``identity``: also measure LPIPS, FID and ArcFace identity where their weights are on disk
    (see the module docstring); ``False`` skips one even then.
    """
    from ..restore import FaceRestorer

    restorers = [FaceRestorer.from_pretrained(m, device=device) for m in models]
    size, zoom = restorers[0].face_size, restorers[0].crop_zoom
    for r in restorers[1:]:
        if (r.face_size, r.crop_zoom) != (size, zoom):
            raise ValueError(
                f"{r.name} expects {r.face_size}px / zoom {r.crop_zoom}, but {restorers[0].name} {size}px / zoom {zoom}"
            )
    gts, names = load_eval_faces(data, size=size, zoom=zoom, limit=limit, split=split)
    lqs = np.stack([dg.degrade(gt, np.random.default_rng((seed, i)), preset) for i, gt in enumerate(gts)])
    gt_lms = [face_landmarks(gt) for gt in gts]
    outputs = {"bicubic": lqs}
    for name, r in zip(models, restorers):
        outputs[name] = r.restore_faces(lqs)
    nets, unavailable = _metric_nets(device, lpips=lpips, fid=fid and len(gts) >= 2, identity=identity)
    if fid and len(gts) < 2:
        unavailable["fid"] = f"needs at least 2 faces, got {len(gts)}"
    gt_feats = nets["fid"].images(gts) if "fid" in nets else None
    methods: dict[str, dict[str, Any]] = {}
    for name, outs in outputs.items():
        per_net = {}  # per-image values of the optional metrics
        if "lpips" in nets:
            per_net["lpips"] = lpips_distances(nets["lpips"], outs, gts)
        if "identity" in nets:
            per_net["identity"] = identity_similarity(nets["identity"], outs, gts)
        per = []
        for i, (o, gt) in enumerate(zip(outs, gts)):
            lmd = landmark_distance(o, gt_lms[i], zoom=zoom) if gt_lms[i] is not None else None
            per.append(
                dict(name=names[i], psnr=psnr(o, gt), ssim=ssim(o, gt), lmd=lmd) | {k: v[i] for k, v in per_net.items()}
            )
        lmds = [p["lmd"] for p in per if p["lmd"] is not None]
        methods[name] = dict(
            psnr=float(np.mean([p["psnr"] for p in per])),
            ssim=float(np.mean([p["ssim"] for p in per])),
            lmd=float(np.mean(lmds)) if lmds else float("nan"),
            lmd_images=len(lmds),
        ) | {k: float(np.mean(v)) for k, v in per_net.items()}
        if gt_feats is not None:
            methods[name]["fid"] = fid_from_features(nets["fid"].images(outs), gt_feats)
        methods[name]["per_image"] = per
    return EvalResult(
        data=str(data),
        preset=preset,
        seed=seed,
        num_images=len(gts),
        methods=methods,
        unavailable=unavailable,
        fid_weights=nets["fid"].variant if "fid" in nets else None,
    )


def degrade_face(
    img: np.ndarray,
    *,
    blur: float = 0.0,
    downsample: float = 1.0,
    noise: float = 0.0,
    jpeg: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Degrade an aligned (S,S,3) uint8 face in a fixed order: blur, downsample, noise, JPEG, bicubic back to S.

    Args:
        blur: Gaussian sigma in pixels of a 512 px face (0: none).
        downsample: Factor (1: none).
        noise: Gaussian sigma on 0-255 (0: none); needs ``rng``.
        jpeg: JPEG quality (None: none).
    """
    s = img.shape[0]
    x = dg.gaussian_blur(img, blur * s / 512) if blur > 0 else img
    x = dg.downsample(x, downsample) if downsample > 1 else x
    if noise > 0:
        x = dg.add_gaussian_noise(x, noise, rng if rng is not None else np.random.default_rng(0))
    x = dg.jpeg(x, int(jpeg)) if jpeg is not None else x
    return x if x.shape[0] == s else cv2.resize(x, (s, s), interpolation=cv2.INTER_CUBIC)


def restore_all(restorers: dict[str, Any], lq: np.ndarray) -> dict[str, np.ndarray]:
    """'bicubic' (the degraded faces themselves) and each restorer's output on the same (N,S,S,3) faces."""
    return {"bicubic": lq, **{n: r.restore_faces(lq) for n, r in restorers.items()}}


_FACTORS = {"blur": "blur", "downsample": "downsample", "noise": "noise", "jpeg": "jpeg"}


def degradation_sweep(
    restorers: dict[str, Any],
    faces: np.ndarray,
    factor: str,
    values: list[float],
    *,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Metrics against one degradation factor, others off.

    Args:
        restorers: name -> FaceRestorer (all at the faces' resolution); 'bicubic' is always added.
        faces: (N,S,S,3) clean aligned faces.
        factor: 'blur' (sigma at 512 px), 'downsample' (factor), 'noise' (sigma, 0-255) or 'jpeg' (quality).
        values: Settings of that factor.
        seed: Noise seed.

    Returns:
        method -> {"psnr": (V,N), "ssim": (V,N)} per-value, per-image metrics.
    """
    if factor not in _FACTORS:
        raise ValueError(f"unknown factor {factor!r}; use blur, downsample, noise or jpeg")
    out: dict[str, dict[str, np.ndarray]] = {}
    for n in ["bicubic", *restorers]:
        out[n] = {"psnr": np.zeros((len(values), len(faces))), "ssim": np.zeros((len(values), len(faces)))}
    for vi, v in enumerate(values):
        setting = {_FACTORS[factor]: int(v) if factor == "jpeg" else v}
        lq = np.stack([degrade_face(f, rng=np.random.default_rng((seed, i)), **setting) for i, f in enumerate(faces)])
        for n, imgs in restore_all(restorers, lq).items():
            out[n]["psnr"][vi] = [min(psnr(a, b), 60.0) for a, b in zip(imgs, faces)]
            out[n]["ssim"][vi] = [ssim(a, b) for a, b in zip(imgs, faces)]
    return out
