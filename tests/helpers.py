"""Test helpers: small random-weight models from the registry's architectures and synthetic photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gfr_core import GFPGAN, FaceRestorer, save_checkpoint
from gfr_core.face import Detection, template

TINY_GFPGAN = dict(out_size=64, num_style_feat=32, channel_multiplier=1, narrow=1 / 16, sft_half=True, flavour="clean")


def tiny_restorer(seed: int = 0, max_batch: int = 8, trust: float = 0.0) -> FaceRestorer:
    torch.manual_seed(seed)
    return FaceRestorer(GFPGAN(**TINY_GFPGAN), face_size=64, name="tiny", max_batch=max_batch, trust=trust)


def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_checkpoint(path, GFPGAN(**TINY_GFPGAN), arch="gfpgan", config=TINY_GFPGAN)


def smooth_photo(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A smooth synthetic RGB photo (sums of low-frequency sinusoids): our own test image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.005, 0.03, 2).tolist() + [rng.uniform(0, 6.28)]
            img[..., c] += np.sin(fx * x + fy * y + ph)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 200 + 30).astype(np.uint8)


def face_at(cx: float, cy: float, size: float, angle_deg: float = 0.0) -> Detection:
    """A detection whose landmarks are the FFHQ template placed at (cx, cy), ``size`` px, rotated."""
    t = template(512) - 256.0
    a = np.deg2rad(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lm = (t @ r.T) * (size / 512) + np.array([cx, cy])
    half = size / 2
    return Detection(box=np.array([cx - half, cy - half, cx + half, cy + half]), landmarks=lm, score=1.0)


def tiny_prior_and_faces(tmp_path: Path) -> tuple[Path, Path]:
    """Four synthetic 48 px 'faces' in a folder and a 16 px prior trained one step on them: (folder, prior)."""
    from PIL import Image

    from gfr_core.training import PriorConfig, train_prior

    data = tmp_path / "faces"
    data.mkdir()
    for i in range(4):
        Image.fromarray(smooth_photo(48, 48, seed=i)).save(data / f"f{i}.png")
    torch.manual_seed(0)
    prior = train_prior(
        PriorConfig(
            data=str(data),
            out=str(tmp_path / "p"),
            size=16,
            style_dim=16,
            n_mlp=2,
            narrow=1 / 32,
            batch=4,
            steps=1,
            prealigned=True,
            sample_every=10,
            device="cpu",
        )
    )
    return data, prior
