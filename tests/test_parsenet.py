"""ParseNet face parsing: strict conversion, the parsing mask, and its use as the pipeline's blend mask.

Parity with facexlib's official class is in tests/fixtures/parity/parsenet_small.safetensors (checked by
test_verify with the other fixtures); its weights are reused here as a small working parser.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gfr_core import FaceRestorer, read_image
from gfr_core.face import face_region_mask, parsing_face_mask
from gfr_core.models import ParseNet
from gfr_core.models.family import UnmatchedKeysError
from gfr_core.models.parsenet import FACE_LABELS, FAMILY

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "parity" / "parsenet_small.safetensors"
SMALL = dict(size=64, min_feat_size=16, base_ch=16, res_depth=2, min_ch=8, max_ch=32)


def _official() -> dict[str, torch.Tensor]:
    t = load_file(str(FIXTURE))
    return {k[len("state_dict.") :]: v for k, v in t.items() if k.startswith("state_dict.")}


def _small_parser(force_label: int | None = None) -> ParseNet:
    cfg = FAMILY.config(**SMALL)
    net = FAMILY.build(cfg)
    net.load_state_dict(FAMILY.converters["parsenet"](_official(), {}, cfg), strict=True)
    if force_label is not None:  # make one class win everywhere
        with torch.no_grad():
            net.to_parsing.conv.bias[force_label] += 1e4
    return net.eval()


def test_strict_conversion_refuses_foreign_keys_and_wrong_shapes():
    sd = _official()
    cfg = FAMILY.config(**SMALL)
    with pytest.raises(UnmatchedKeysError, match="out_extra"):
        FAMILY.converters["parsenet"]({**sd, "out_extra.conv2d.weight": torch.zeros(1)}, {}, cfg)
    bad = dict(sd)
    bad["body.0.conv1.conv2d.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        FAMILY.build(cfg).load_state_dict(FAMILY.converters["parsenet"](bad, {}, cfg), strict=True)
    # DataParallel prefixes are accepted
    out = FAMILY.converters["parsenet"]({f"module.{k}": v for k, v in sd.items()}, {}, cfg)
    assert set(out) == set(FAMILY.build(cfg).state_dict())


def test_parsing_mask_keeps_face_classes_feathered_and_clears_the_border():
    labels = np.zeros((512, 512), np.int64)
    labels[100:420, 120:400] = 1  # skin
    labels[200:230, 180:220] = 4  # an eye
    labels[430:500, :] = 14  # neck: not part of the mask
    m = parsing_face_mask(labels, FACE_LABELS)
    assert m.dtype == np.float32 and m.shape == (512, 512)
    assert m[260, 260] > 0.99 and m[215, 200] > 0.99 and m[470, 256] < 0.01 and m[5, 5] == 0
    assert 0.2 < m[260, 120] < 0.8  # a soft edge on the class border
    small = parsing_face_mask(labels, FACE_LABELS, out_size=64)
    assert small.shape == (64, 64) and abs(small.mean() - m.mean()) < 0.01
    assert parsing_face_mask(np.zeros((512, 512), np.int64), FACE_LABELS).max() == 0
    full = parsing_face_mask(np.ones((512, 512), np.int64), FACE_LABELS)
    assert full[256, 256] > 0.99 and full[0, 256] < 0.5  # the cleared 10 px border
    with pytest.raises(ValueError, match="square"):
        parsing_face_mask(np.zeros((4, 5), np.int64), FACE_LABELS)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rgb = read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama3.jpg").rgb
    return cv2.resize(rgb, (rgb.shape[1] // 3, rgb.shape[0] // 3), interpolation=cv2.INTER_AREA)


def test_the_parser_shapes_the_blend_mask(photo, caplog):
    plain = FaceRestorer.from_pretrained("embedded", parser=None)
    base = plain(photo, upscale=2)
    assert base.faces
    template = face_region_mask(plain.face_size, plain.crop_zoom)

    face = FaceRestorer.from_pretrained("embedded", parser=None)
    face.parser = _small_parser(force_label=1)  # everything is skin: the mask is the whole crop, feathered
    masks = face.face_masks(base.faces)
    assert masks[0].shape == template.shape and masks[0].mean() > template.mean() + 0.05
    assert not np.array_equal(face(photo, upscale=2).image, base.image)

    none = FaceRestorer.from_pretrained("embedded", parser=None)
    none.parser = _small_parser(force_label=0)  # nothing is face: a failed parse falls back to the template
    with caplog.at_level(logging.WARNING, logger="gfr_core.restore.restorer"):
        assert np.array_equal(none.face_masks(base.faces)[0], template)
        assert np.array_equal(none(photo, upscale=2).image, base.image)
    assert "template mask" in caplog.text


def test_a_cached_parsenet_file_is_used_automatically(tmp_path):
    """Build the Hub cache layout by hand with a full-size ParseNet .pth (official keys, random weights)."""
    snap = tmp_path / "models--gmk123--GFPGAN" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (tmp_path / "models--gmk123--GFPGAN" / "refs").mkdir()
    (tmp_path / "models--gmk123--GFPGAN" / "refs" / "main").write_text("a" * 40)
    inv = {v: k for k, v in _key_map().items()}
    sd = {inv[k]: v for k, v in ParseNet().state_dict().items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    (snap / "parsing_parsenet.pth").write_bytes(buf.getvalue())
    code = (
        "from gfr_core import FaceRestorer;"
        "a = FaceRestorer.from_pretrained('embedded');"
        "b = FaceRestorer.from_pretrained('embedded', parser=None);"
        "print(type(a.parser).__name__, a.parser.config.size, b.parser)"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["ParseNet", "512", "None"]
    # a damaged cached file is reported in one line and the restorer keeps the template mask
    (snap / "parsing_parsenet.pth").write_bytes(b"\x89PNG\r\n\x1a\n not a checkpoint")
    code = "from gfr_core import FaceRestorer; print(FaceRestorer.from_pretrained('embedded').parser)"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["None"] and "not using the cached parsenet" in res.stderr


def _key_map() -> dict[str, str]:
    """Official key -> our key, for the full-size layout (from the committed manifest)."""
    import json

    man = json.loads((ROOT / "tests" / "fixtures" / "manifests" / "parsenet_512.json").read_text())
    with torch.device("meta"):
        official = {k: torch.empty(shape, dtype=getattr(torch, dt)) for k, shape, dt in man["keys"]}
        ours = FAMILY.converters["parsenet"](official, {}, FAMILY.config())
    assert len(ours) == len(official)
    # the converter keeps insertion order: pair the keys up
    return dict(zip(official, ours, strict=True))
