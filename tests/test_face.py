"""Face pipeline: alignment and paste-back geometry, batching, determinism, fidelity, detection."""

from __future__ import annotations

import io
import tarfile

import cv2
import numpy as np
import pytest
import torch

from gfr_core import GFPGAN, FaceRestorer
from gfr_core.face import align_face, detect_faces, estimate_similarity, face_mask, template
from helpers import face_at, smooth_photo, tiny_restorer


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ (s * r).T + t
    m = estimate_similarity(src, dst)
    assert np.allclose(m[:, :2], s * r, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_align_puts_landmarks_on_the_template():
    photo = smooth_photo()
    det = face_at(150, 120, 180, angle_deg=15)
    a = align_face(photo, det.landmarks, 128)
    mapped = np.c_[det.landmarks, np.ones(5)] @ a.affine.T
    assert np.abs(mapped - template(128)).max() < 1e-6
    assert a.crop.shape == (128, 128, 3)


@pytest.mark.parametrize("upscale", [1, 2])
def test_identity_restore_pastes_back_the_original_pixels(upscale):
    """fidelity=1 is exactly the input, upscaled as the background is (bicubic): no face is changed."""
    photo = smooth_photo()
    r = tiny_restorer()
    dets = [face_at(100, 110, 150, 10), face_at(240, 120, 120, -20)]
    res = r(photo, upscale=upscale, fidelity=1.0, detections=dets)
    bg = photo if upscale == 1 else cv2.resize(photo, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(res.image, bg) and len(res.faces) == 2


def test_random_model_replaces_faces_only_inside_their_footprint():
    photo = smooth_photo()
    r = tiny_restorer(trust=1.0)  # replaced wherever it restores: the footprint is the mask's alone
    det = face_at(100, 110, 100)
    res = r(photo, upscale=1, detections=[det])
    diff = np.abs(res.image.astype(int) - photo.astype(int)).sum(2)
    ys, xs = np.nonzero(diff > 0)
    # the face-shaped mask covers face and forehead (not the square crop): nothing changes far outside it
    assert xs.min() >= 100 - 70 and xs.max() <= 100 + 70 and ys.min() >= 110 - 90 and ys.max() <= 110 + 80
    assert diff[110 - 20 : 110 + 20, 100 - 20 : 100 + 20].mean() > 2  # the centre did change
    crop_corners = [(110 - 60, 100 - 60), (110 - 60, 100 + 60), (110 + 60, 100 + 60)]  # inside the crop, off the face
    assert all(diff[y, x] == 0 for y, x in crop_corners)


def test_faces_over_the_border_and_overlapping_are_handled():
    photo = smooth_photo()
    r = tiny_restorer()
    dets = [face_at(10, 20, 120), face_at(310, 230, 90), face_at(150, 120, 100), face_at(180, 130, 100)]
    res = r(photo, upscale=2, detections=dets)
    assert res.image.shape == (480, 640, 3) and len(res.faces) == 4


def test_all_faces_in_one_forward_and_deterministic():
    photo = smooth_photo()
    r = tiny_restorer(max_batch=8)
    calls = []
    hook = r.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    dets = [face_at(80, 80, 80), face_at(220, 90, 80), face_at(160, 180, 80)]
    a = r(photo, detections=dets)
    hook.remove()
    assert calls == [3]
    b = r(photo, detections=dets)
    assert np.array_equal(a.image, b.image)


def test_batches_are_bounded():
    r = tiny_restorer(max_batch=2)
    calls = []
    r.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    crops = np.random.default_rng(0).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    out = r.restore_faces(crops)
    assert calls == [2, 2, 1] and out.shape == crops.shape
    # batching does not change results
    single = np.stack([r.restore_faces(c[None])[0] for c in crops])
    assert np.abs(single.astype(int) - out.astype(int)).max() <= 1


def test_fidelity_controls_distance_to_input():
    r = tiny_restorer()
    crop = smooth_photo(64, 64)[None]
    outs = {f: r.restore_faces(crop, fidelity=f)[0].astype(float) for f in (0.0, 0.25, 0.5, 0.75, 1.0)}
    dist = {f: np.abs(o - crop[0]).mean() for f, o in outs.items()}
    assert dist[1.0] == 0.0
    assert dist[0.0] > dist[0.25] > dist[0.5] > dist[0.75] > dist[1.0]  # linear towards the input
    with torch.inference_mode():
        x = torch.from_numpy(crop).permute(0, 3, 1, 2).float() / 127.5 - 1
        ref = ((r.model(x, fused=r.settings.fused).clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()[0]
        official = ((r.model(x, fused=True).clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()[0]
    assert np.array_equal(outs[0.0], ref)  # 0 is exactly the model's output
    assert np.abs(outs[0.0] - official).max() <= 1  # the faster formulation changes at most the last bit
    with pytest.raises(ValueError, match="fidelity"):
        r.restore_faces(crop, fidelity=1.5)


def test_restore_aligned_and_aligned_mode():
    r = tiny_restorer()
    face = smooth_photo(100, 100)
    out = r.restore_aligned(face)  # an aligned crop of any size comes back at its own size
    assert out.shape == (100, 100, 3) and out.dtype == np.uint8 and not np.array_equal(out, face)
    gray = r.restore_aligned(face[..., 0])
    assert gray.shape == (100, 100)
    res = r(face, aligned=True, upscale=3)  # --aligned honours the upscale
    assert res.image.shape == (300, 300, 3) and len(res.faces) == 1 and res.upscale == 3
    assert np.array_equal(
        r(face, aligned=True, upscale=3, fidelity=1.0).image,
        cv2.resize(face, (300, 300), interpolation=cv2.INTER_CUBIC),
    )


def test_no_face_returns_upscaled_photo_with_message():
    r = tiny_restorer()
    photo = smooth_photo(60, 80)
    res = r(photo, upscale=2)
    assert res.image.shape == (120, 160, 3) and res.faces == []
    assert any("no face" in m for m in res.messages)


def test_face_mask_is_feathered():
    m = face_mask(64)
    assert m[32, 32] == 1.0 and m[0, 0] < 0.01 and 0 < m[32, 2] < 1


def _val_faces(data, n):
    from PIL import Image

    with tarfile.open(data / "faces128-lfw-val.tar") as t:
        members = [m for m in t.getmembers() if m.isfile()][:n]
        return [np.asarray(Image.open(io.BytesIO(t.extractfile(m).read())).convert("RGB")) for m in members]


def test_mtcnn_landmarks_land_on_the_template_after_alignment(shared_data):
    """Detect, align, detect again on the aligned crop: the landmarks must sit on the template."""
    errs = []
    for img in _val_faces(shared_data, 12):
        big = cv2.resize(img, (256, 256), interpolation=cv2.INTER_CUBIC)
        dets = detect_faces(big)
        assert dets, "MTCNN found no face in an LFW photo"
        crop = align_face(big, dets[0].landmarks, 256).crop
        again = detect_faces(crop)
        assert again
        errs.append(np.abs(again[0].landmarks - template(256)).mean() / 256)
    assert float(np.median(errs)) < 0.03


def test_group_photo_every_face_found_and_replaced(shared_data, tmp_path):
    faces = _val_faces(shared_data, 6)
    group = np.concatenate([np.concatenate(faces[:3], 1), np.concatenate(faces[3:], 1)], 0)  # 256x384, 6 faces
    r = tiny_restorer()
    res = r(group, upscale=2)
    assert len(res.faces) == 6
    assert res.image.shape == (512, 768, 3)
    torch.manual_seed(0)
    big = FaceRestorer(GFPGAN(out_size=256, num_style_feat=32, channel_multiplier=1, narrow=1 / 16), face_size=256)
    same = big(group, upscale=2, fidelity=1.0)
    bg = cv2.resize(group, (768, 512), interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(same.image.astype(int) - bg).mean() < 2.0  # identity restore: no seams, no shift


def test_small_faces_are_area_downsampled_before_pasting():
    """A 64 px crop pasted onto a 20 px face goes through the area-resize branch and still lands exactly."""
    photo = smooth_photo()
    r = tiny_restorer()
    res = r(photo, upscale=1, fidelity=1.0, detections=[face_at(150, 120, 20)])
    diff = np.abs(res.image.astype(int) - photo.astype(int))
    assert diff.mean() < 0.2 and diff.max() <= 8


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: r(np.zeros((40, 40, 3), np.float32) + 7.0), r"float image must hold values in \[0,1\]"),
        (lambda r: r(np.zeros((40, 40, 5), np.uint8)), r"\(H,W,3\) or \(H,W,4\) image \(uint8 RGB\)"),
        (lambda r: r(np.zeros((40, 40, 3), np.int64)), r"unsupported image dtype int64; pass uint8"),
        (lambda r: r([[0, 1], [2, 3]]), r"must be an \(H,W,3\) uint8 RGB numpy array, got list"),
        (lambda r: r(np.zeros((40, 40, 3), np.uint8), upscale="2"), r"upscale must be a number between 1 and 8"),
        (lambda r: r(np.zeros((40, 40, 3), np.uint8), fidelity=2), r"fidelity must be in \[0, 1\]"),
        (lambda r: r.restore_aligned(np.zeros((0, 40, 3), np.uint8)), r"the image is empty"),
        (
            lambda r: r.restore_faces(np.zeros((2, 32, 32, 3), np.uint8)),
            r"crops must be \(N,64,64,3\) uint8 RGB in \[0,255\]",
        ),
        (lambda r: r.restore_faces(np.zeros((2, 64, 64, 3), np.float32)), r"crops must be \(N,64,64,3\) uint8 RGB"),
    ],
)
def test_public_entry_points_check_their_inputs(call, match):
    """A wrong dtype, shape or range is one ValueError naming what is expected, not a failure deep in torch."""
    with pytest.raises(ValueError, match=match) as info:
        call(tiny_restorer())
    assert "\n" not in str(info.value)


def test_load_model_checks_its_argument():
    from gfr_core import load_model

    with pytest.raises(ValueError, match="model name or a checkpoint path"):
        load_model(123)  # type: ignore[arg-type]


def test_fidelity_moves_a_photo_monotonically_to_its_upscaled_input():
    photo = smooth_photo()
    r = tiny_restorer()
    dets = [face_at(100, 110, 100, 5)]
    bg = cv2.resize(photo, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC).astype(float)
    dist = [np.abs(r(photo, upscale=2, fidelity=f, detections=dets).image - bg).mean() for f in (0, 0.25, 0.5, 0.75, 1)]
    assert dist[0] > dist[1] > dist[2] > dist[3] > dist[4] == 0.0


def test_a_grayscale_photo_stored_as_rgb_comes_back_grayscale():
    gray = np.repeat(smooth_photo()[..., :1], 3, axis=2)
    out = tiny_restorer()(gray, upscale=2, detections=[face_at(100, 110, 100)]).image
    assert out.shape == (480, 640, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_the_restored_colour_is_the_input_colour():
    """A model that tints every face (adds +38 red) barely changes its colour after composition: where the
    face is corrected, the coarse part of the change is removed; where it is replaced, the part beyond the
    colour tolerance (a few grey levels) is."""
    photo = smooth_photo()
    r = tiny_restorer()
    det = face_at(100, 110, 100)

    class Tint(torch.nn.Module):
        def forward(self, x, **kw):
            return x + torch.tensor([0.3, 0.0, 0.0]).view(1, 3, 1, 1)

    r._forward = Tint()
    out = r(photo, upscale=1, detections=[det]).image.astype(float)
    centre = (slice(80, 140), slice(70, 130))
    shift = abs(out[centre][..., 0].mean() - photo[centre][..., 0].astype(float).mean())
    assert shift <= r.composition.colour_tolerance, shift
    for up in (2, 4):  # larger outputs: the same face is more replaced than corrected
        big = r(photo, upscale=up, detections=[det]).image.astype(float)
        ref = cv2.resize(photo, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC).astype(float)
        c = (slice(80 * up, 140 * up), slice(70 * up, 130 * up))
        assert abs(big[c][..., 0].mean() - ref[c][..., 0].mean()) <= r.composition.colour_tolerance
