"""RetinaFace-R50 option: layout of the released checkpoint, anchor decoding, and the offline error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gfr_core.face import detect_faces
from gfr_core.hub import ModelUnavailableError, UnmatchedKeysError, convert_state_dict, get_card
from gfr_core.models.retinaface import RetinaFace, decode_boxes, decode_landmarks, prior_boxes


def test_layout_matches_facexlib_and_dataparallel_prefix_is_stripped():
    with torch.device("meta"):
        sd = RetinaFace().state_dict()
    assert sum(v.numel() for k, v in sd.items() if "running" not in k and "num_batches" not in k) == 27_293_600
    for key in [
        "body.conv1.weight",
        "body.layer4.2.bn3.running_var",
        "fpn.merge1.1.weight",
        "ssh3.conv7x7_3.0.weight",
        "ClassHead.2.conv1x1.bias",
        "BboxHead.0.conv1x1.weight",
        "LandmarkHead.1.conv1x1.weight",
    ]:
        assert key in sd, key
    assert sd["LandmarkHead.0.conv1x1.weight"].shape == (20, 256, 1, 1)
    wrapped = {"module." + k: v for k, v in sd.items()}
    assert set(convert_state_dict(get_card("retinaface-r50"), wrapped)) == set(sd)
    with pytest.raises(UnmatchedKeysError):
        convert_state_dict(get_card("retinaface-r50"), {**wrapped, "module.extra.weight": torch.zeros(1)})


def test_anchors_and_decoding():
    p = prior_boxes(480, 640)
    assert p.shape == ((80 * 60 + 40 * 30 + 20 * 15) * 2, 4)
    assert torch.allclose(p[0], torch.tensor([4 / 640, 4 / 480, 16 / 640, 16 / 480]))
    # zero offsets decode to the anchors themselves
    boxes = decode_boxes(torch.zeros(len(p), 4), p)
    assert torch.allclose((boxes[:, :2] + boxes[:, 2:]) / 2, p[:, :2]) and torch.allclose(
        boxes[:, 2:] - boxes[:, :2], p[:, 2:]
    )
    lms = decode_landmarks(torch.zeros(len(p), 10), p).reshape(-1, 5, 2)
    assert torch.allclose(lms, p[:, None, :2].expand(-1, 5, -1))


def test_random_weights_detect_runs():
    torch.manual_seed(0)
    m = RetinaFace().eval()
    boxes, scores, lms = m.detect(np.zeros((64, 96, 3), np.uint8), score_threshold=0.99)
    assert boxes.shape[1:] == (4,) and lms.shape[1:] == (5, 2) and len(scores) == len(boxes)


def test_offline_retinaface_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    from gfr_core import GFPGAN, FaceRestorer
    from helpers import TINY_GFPGAN

    restorer = FaceRestorer(GFPGAN(**TINY_GFPGAN), face_size=64, detector="retinaface")
    with pytest.raises(ModelUnavailableError, match="detection_Resnet50_Final.pth"):
        restorer.detect(np.zeros((64, 64, 3), np.uint8))


def test_the_face_layer_takes_a_loaded_detector_and_reads_no_model_file():
    torch.manual_seed(0)
    dets = detect_faces(np.zeros((96, 96, 3), np.uint8), detector=RetinaFace().eval(), score_threshold=0.0)
    assert all(d.landmarks.shape == (5, 2) for d in dets)
    with pytest.raises(ValueError, match="load_model\\('retinaface-r50'\\)"):
        detect_faces(np.zeros((64, 64, 3), np.uint8), detector="retinaface")
