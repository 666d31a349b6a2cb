"""Ground truth on real photographs: degrade a sharp photo, restore it with the default pipeline, and hold
every face to the bounds of the project's rule (never worse than bicubic).

Bounds per face, against the bicubic upscale of the same degraded copy: face-region PSNR (to the original)
at least bicubic - 0.25 dB, Laplacian sharpness at least 0.9x bicubic, colour dE (blurred) median <= 3 and
worst <= 8. The committed copies are 1024 px; the full-size files in ../shared are used too where present.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gfr_core import FaceRestorer, read_image
from gfr_core.metrics.photo import DEGRADATIONS, degrade_photo, evaluate_photos, face_regions, score_photo

HERE = Path(__file__).parent / "fixtures" / "photos-pd"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos-pd"


@pytest.fixture(scope="module")
def restorer() -> FaceRestorer:
    return FaceRestorer.from_pretrained("embedded")  # the default offline model


def _photos(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    files = sorted(folder.glob("*.jpg"))
    return [read_image(f).rgb for f in files], [f.name for f in files]


def _check(scores) -> None:
    faces = [(s.photo, s.degradation, f) for s in scores for f in s.faces]
    assert len(faces) >= 4 * len(DEGRADATIONS), "too few faces found to test anything"
    for photo, deg, f in faces:
        where = f"{photo} {deg} face {f.face_px:.0f}px"
        assert f.sharpness_ratio >= 0.9, f"{where}: sharpness x{f.sharpness_ratio:.2f} of bicubic"
        assert f.psnr >= f.psnr_bicubic - 0.25, f"{where}: PSNR {f.psnr:.2f} vs bicubic {f.psnr_bicubic:.2f}"
    de = [f.delta_e for _, _, f in faces]
    assert np.median(de) <= 3 and max(de) <= 8, (np.median(de), max(de))


def test_committed_photos_meet_every_bound(restorer):
    _check(evaluate_photos(restorer, *_photos(HERE)))


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="optional: ../shared/data/photos-pd is not present")
def test_full_size_photos_meet_every_bound(restorer):
    _check(evaluate_photos(restorer, *_photos(SHARED)))


def test_fidelity_curve_rises_to_exactly_the_input(restorer):
    """Distance to the upscaled input falls monotonically with fidelity, and 1 is that input itself."""
    rgb = read_image(HERE / "obama.jpg").rgb
    d = DEGRADATIONS[2]
    lq = degrade_photo(rgb, d)
    bic = cv2.resize(lq, None, fx=d.scale, fy=d.scale, interpolation=cv2.INTER_CUBIC)
    regions = face_regions(rgb)
    outs = {f: restorer(lq, upscale=d.scale, fidelity=f).image for f in (0.0, 0.25, 0.5, 0.75, 1.0)}
    dist = [np.abs(outs[f].astype(float) - bic).sum() for f in sorted(outs)]
    assert all(a > b for a, b in zip(dist, dist[1:])) and dist[-1] == 0
    scores = [score_photo(rgb, outs[f], bic, regions)[0] for f in sorted(outs)]
    assert scores[-1].psnr == scores[-1].psnr_bicubic  # fidelity 1: exactly the bicubic baseline
