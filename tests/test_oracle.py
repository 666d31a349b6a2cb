"""The pipeline's ceiling: a perfect restorer (the sharp face, aligned with the pipeline's own transform) run
through gfr's composition must keep what it restores.

Bounds (issue #33), on a committed public-domain photo, every degradation:
* 512 px: gfr's mean face-PSNR gain over bicubic is at least the official-style paste's (GFPGAN's: bilinear
  warp back, eroded square mask) of the same crops. The composition before this (band-limited correction,
  template mask, bilinear warps) kept under half of it.
* 64 px at zoom 1.3 (the embedded model's crop): at least +0.3 dB on average, and no face more than 0.05 dB
  below bicubic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gfr_core import FaceRestorer, read_image
from gfr_core.face import Detection, align_face, detect_faces
from gfr_core.metrics.oracle import PerfectRestorer, oracle_faces, oracle_report, parse_oracle, perfect_restorer
from gfr_core.metrics.photo import DEGRADATIONS, degrade_photo
from gfr_core.tools.cli import main

HERE = Path(__file__).parent / "fixtures" / "photos-pd"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return read_image(HERE / "obama-1080p.jpg").rgb  # 1024 px wide, one ~150 px face


def _by_degradation(faces, attr):
    degs = dict.fromkeys(f.degradation for f in faces)
    return {d: float(np.mean([getattr(f, attr) for f in faces if f.degradation == d])) for d in degs}


@pytest.mark.slow
def test_perfect_512_restorer_keeps_at_least_the_official_paste(photo):
    faces = oracle_faces([photo], ["obama-1080p"], face_size=512)
    assert len(faces) == len(DEGRADATIONS)
    gfr, official = _by_degradation(faces, "gfr_gain"), _by_degradation(faces, "official_gain")
    for d in gfr:
        assert official[d] > 3, f"{d}: the official paste of a perfect crop should gain a lot ({official[d]:+.2f})"
        assert gfr[d] >= official[d], f"{d}: gfr {gfr[d]:+.2f} dB < official-style paste {official[d]:+.2f} dB"


@pytest.mark.slow
def test_perfect_64_restorer_gains_and_never_loses_a_face(photo):
    faces = oracle_faces([photo], ["obama-1080p"], face_size=64, zoom=1.3)
    gains = [f.gfr_gain for f in faces]
    assert np.mean(gains) >= 0.3, gains
    assert min(gains) >= -0.05, gains


def test_perfect_restorer_returns_the_sharp_crop_of_the_nearest_key(photo):
    d = DEGRADATIONS[2]
    lq = degrade_photo(photo, d)
    det = detect_faces(photo, score_threshold=0.95)[0]
    small = Detection(box=(det.box + 0.5) / d.scale - 0.5, landmarks=(det.landmarks + 0.5) / d.scale - 0.5, score=1)
    net = perfect_restorer(photo, lq, [small], d.scale, 128, 1.0)
    assert isinstance(net, PerfectRestorer)
    key = align_face(lq, small.landmarks, 128).crop
    x = torch.from_numpy(np.stack([key, key])).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = net(x, fused=True)
    target = align_face(photo, det.landmarks, 128).crop.astype(np.float32) / 127.5 - 1
    got = y[1].permute(1, 2, 0).numpy()
    assert y.shape == x.shape and np.abs(got - target).max() < 1e-5
    # the sharp crop is much closer to the true face than the degraded one: the oracle is worth measuring
    assert np.abs(got - target).mean() < np.abs(x[0].permute(1, 2, 0).numpy() - target).mean()


def test_report_and_specs(photo):
    faces = oracle_faces([photo], ["p"], face_size=64, zoom=1.3, degradations=DEGRADATIONS[:1])
    table = oracle_report(faces, title="t")
    assert "| p | x2-q70 | 1 |" in table and "**mean** | all" in table
    assert parse_oracle("512") == (512, 1.0) and parse_oracle("64:1.3") == (64, 1.3)
    for bad in ("", "64:x", "5", "512:9"):
        with pytest.raises(ValueError, match="--oracle"):
            parse_oracle(bad)


@pytest.mark.slow
def test_gfr_eval_photos_oracle_cli(capsys, tmp_path):
    (tmp_path / "a.jpg").write_bytes((HERE / "obama-1080p.jpg").read_bytes())
    assert main(["eval-photos", str(tmp_path), "--model", "embedded", "--oracle", "64:1.3"]) == 0
    out, err = capsys.readouterr()
    assert "official paste" in out and "| a.jpg | x4-q60 | 1 |" in out
    assert "perfect 64 px restorer: gfr +" in err and "embedded" in err


def test_a_face_the_64px_model_cannot_resolve_is_said():
    """A 512 px aligned face with the 64 px model: its change fades out, and the result says so per face."""
    r = FaceRestorer.from_pretrained("embedded")
    face = align_face(
        read_image(HERE / "obama.jpg").rgb, detect_faces(read_image(HERE / "obama.jpg").rgb)[0].landmarks, 512
    )
    res = r(face.crop, aligned=True, upscale=1)
    assert any("larger than the 64 px model 'embedded' resolves" in m for m in res.messages), res.messages
    assert sum("gfr download gfpgan-v1.4" in m for m in res.messages) == 1  # what would help, said once
