"""Reliability, round three (issue #41): the quality rules. False detections are rejected and counted (42);
the composition trusts a model as far as its card says (44): the perfect restorer and the released models
in full, the bundled 64 px model protected, so that its faces are never below bicubic. Each test fails on
the code before these changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gfr_core import FaceRestorer, get_card, read_image
from gfr_core.face import Detection, detect_faces, face_like
from gfr_core.metrics import oracle_faces
from gfr_core.metrics.photo import DEGRADATIONS, degrade_photo
from gfr_core.restore.compose import Composition
from helpers import face_at, smooth_photo

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "fixtures" / "photos-pd"


def _with(det: Detection, **kw) -> Detection:
    return Detection(box=kw.get("box", det.box), landmarks=kw.get("landmarks", det.landmarks), score=kw["score"])


def test_a_doubtful_detection_without_skin_or_a_face_shape_is_not_a_face():
    photo = read_image(PHOTOS / "obama.jpg").rgb
    real = detect_faces(photo)[0]
    assert face_like(photo, real)[0] and face_like(photo, _with(real, score=0.95))[0]  # skin: kept
    blue = np.zeros_like(photo)
    blue[...] = (30, 40, 90)  # a dark blue suit, like MTCNN's false detections in the shared photos
    assert face_like(blue, _with(real, score=0.99))[0]  # a sure score is a face whatever it looks like
    ok, why = face_like(blue, _with(real, score=0.95))
    assert not ok and "no skin colour" in why
    gray = np.repeat(photo.mean(2, keepdims=True), 3, 2).astype(np.uint8)
    assert face_like(gray, _with(real, score=0.95))[0]  # no colour to judge: the score decides
    upside = real.landmarks[[3, 4, 2, 0, 1]]  # the mouth above the eyes: no face has these landmarks
    ok, why = face_like(photo, _with(real, landmarks=upside, score=1.0))
    assert not ok and "landmarks are not a face's" in why


def test_false_detections_are_not_restored_and_the_result_counts_them():
    lq = degrade_photo(read_image(PHOTOS / "obama3.jpg").rgb, next(d for d in DEGRADATIONS if d.name == "x4-q70-blur"))
    raw = detect_faces(lq, min_face_size=8, screen=False)
    assert len(raw) == 2 and raw[1].score < 0.98  # the face, and a patch of the suit scored 0.95
    res = FaceRestorer.from_pretrained("embedded")(lq, upscale=2, min_face_size=8)
    assert len(res.faces) == 1 and res.faces[0].score > 0.99
    assert any(m.startswith("1 detection(s) not restored, not a face: score 0.9") for m in res.messages), res.messages


@pytest.mark.shared_data
def test_the_furniture_in_the_shared_photo_is_not_a_face(shared_data):
    photo = read_image(shared_data / "photos-pd" / "obama.jpg").rgb
    raw = detect_faces(photo, score_threshold=0.95, min_face_size=24, screen=False)
    kept = detect_faces(photo, score_threshold=0.95, min_face_size=24)
    assert len(raw) == 2 and len(kept) == 1 and kept[0].size > 250  # the 0.952 furniture, 60 px, is gone


def test_cards_say_how_far_a_model_is_trusted():
    assert get_card("gfpgan-v1.4").trust == 1.0 and get_card("gpen-bfr-512").trust == 1.0
    assert get_card("embedded").trust == 0.0 and get_card("embedded-noprior").trust == 0.0
    assert FaceRestorer.from_pretrained("embedded").composition.trust == 0.0
    full, protective = Composition(trust=1.0), Composition()
    for density in (0.05, 0.3, 0.9):  # a trusted model replaces wherever it restores, in full
        assert full.replacement(density) == 1.0 and full.for_face(density, 1.0)[1] == 1.0
    assert protective.replacement(0.6) == 0.0 and protective.for_face(0.4, 1.0)[1] == 0.0
    assert 0 < Composition(trust=0.5).replacement(0.45) < 1  # in between, the thresholds shrink
    with pytest.raises(ValueError, match="composition out of range"):
        Composition(trust=1.5)


@pytest.mark.slow
def test_the_perfect_64px_restorer_keeps_at_least_the_official_paste_and_embedded_never_loses():
    """#41.44: with the thresholds alone, the perfect 64 px restorer kept 1.0-1.5 dB less than the official paste
    on 4 of 5 degradations of these photos, and `embedded` fell below bicubic at x2-q70."""
    photos = [read_image(f).rgb for f in sorted(PHOTOS.glob("*.jpg"))]
    names = [f.name for f in sorted(PHOTOS.glob("*.jpg"))]
    faces = oracle_faces(photos, names, face_size=64, zoom=1.3, model=FaceRestorer.from_pretrained("embedded"))
    for deg in dict.fromkeys(f.degradation for f in faces):
        group = [f for f in faces if f.degradation == deg]
        official, gfr = np.mean([f.official_gain for f in group]), np.mean([f.gfr_gain for f in group])
        assert gfr >= official, (deg, gfr, official)
    assert min(f.model_gain for f in faces) >= -0.01, sorted(f.model_gain for f in faces)[:3]


@pytest.mark.parametrize(
    ("name", "px", "quality"), [("obama3.jpg", 60, 70), ("biden.jpg", 55, 90), ("obama.jpg", 45, 50)]
)
def test_a_jpeg_face_keeps_its_edges(name, px, quality):
    """#41.41: a 64 px model on a 45-70 px face of a JPEG at upscale 1 smoothed it (Laplacian x0.5-0.8 of
    bicubic, and up to -2.3 dB on a good JPEG); its edges are now kept (x0.9 at least)."""
    import cv2

    from gfr_core.metrics.photo import Degradation, evaluate_photos

    photo = read_image(PHOTOS / name).rgb
    size = detect_faces(photo)[0].size
    small = cv2.resize(photo, None, fx=px / size, fy=px / size, interpolation=cv2.INTER_AREA)
    r = FaceRestorer.from_pretrained("embedded")
    scores = evaluate_photos(r, [small], [name], degradations=(Degradation(f"x1-q{quality}", 1, quality),))
    (face,) = scores[0].faces
    assert face.sharpness_ratio >= 0.9 and face.psnr_gain >= -0.1, face


def test_a_user_network_is_protected_unless_trusted():
    r = FaceRestorer(FaceRestorer.from_pretrained("embedded").model, face_size=64, crop_zoom=1.3)
    assert r.composition.trust == 0.0
    photo = smooth_photo(200, 200)
    det = face_at(100, 100, 90)
    protected = r(photo, upscale=1, detections=[det]).image
    trusted = FaceRestorer(r.model, face_size=64, crop_zoom=1.3, trust=1.0)(photo, upscale=1, detections=[det]).image
    assert np.abs(protected.astype(int) - photo).mean() < np.abs(trusted.astype(int) - photo).mean()


@pytest.mark.parametrize("chroma", ["444", "420"])
def test_a_restored_clip_is_never_below_bicubic_frame_by_frame(tmp_path, chroma):
    """#41.40: frames count as photos. The clip was written at half colour resolution (yuv420p), which cost
    the faces ~0.9 dB against the bicubic upscale; full colour (the default) keeps every frame at or above it."""
    av = pytest.importorskip("av")
    import cv2

    from gfr_core.tools.cli import main
    from gfr_core.video.io import read_frames
    from gfr_core.video.synth import make_clip

    photo = read_image(PHOTOS / "obama3.jpg").rgb
    maps, sharp = make_clip(photo, tmp_path / "in.mp4", frames=8, size=(320, 180), audio=False)
    extra = [] if chroma == "444" else ["--chroma", "420"]
    assert main(["restore", str(tmp_path / "in.mp4"), "-o", str(tmp_path / "out"), "--model", "embedded", *extra]) == 0
    with av.open(str(tmp_path / "out" / "in.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == f"yuv{chroma}p"
    out = [f for f, _, _ in read_frames(tmp_path / "out" / "in.mp4")]
    bic = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_CUBIC) for f, _, _ in read_frames(tmp_path / "in.mp4")]
    lm = detect_faces(photo, score_threshold=0.95)[0].landmarks
    truth = np.stack([np.c_[lm, np.ones(5)] @ m.T for m in maps])
    (x0, y0), (x1, y1) = truth.min((0, 1)).astype(int), truth.max((0, 1)).astype(int)
    box = (slice(max(0, y0), y1), slice(max(0, x0), x1))

    def psnr(a, b):
        return 10 * np.log10(255**2 / np.mean((a[box].astype(float) - b[box].astype(float)) ** 2))

    gains = [psnr(o, s) - psnr(b, s) for o, b, s in zip(out, bic, sharp)]
    if chroma == "444":
        assert min(gains) >= -0.02, gains
    else:  # the compatible choice costs colour detail: said in the option's help and docs
        assert min(gains) < -0.1, gains
