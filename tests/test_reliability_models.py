"""Reliability, round two (issue #37): bad model files and a bad cache get one right line. Each test fails on
the code before it: items 7 (config values in a file's metadata are bounded), 8 (a corrupt optional
parser is skipped), 10 and 14 (a damaged or replaced ONNX export is exported again), 11 (an unwritable
ONNX cache), 12 (random bytes are not "a pickle that needs code"; a wrong architecture in the metadata
says so) and 15 (NaN weights are refused).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gfr_core import FaceRestorer, load_model, read_image
from gfr_core.hub import ChecksumError, ModelUnavailableError, get_card, local_path, sha256_file
from helpers import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _rewrite(src, dst, *, metadata=None, tensors=None):
    """A copy of the safetensors file ``src`` with some metadata entries or tensors replaced."""
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
        sd = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(metadata or {})
    sd.update(tensors or {})
    save_file(sd, str(dst), metadata=meta)
    return dst


@pytest.mark.parametrize("zoom", ["1e9", "nan", "0"])
def test_a_crop_zoom_out_of_range_in_the_metadata_is_refused(tmp_path, zoom):
    bad = _rewrite(
        tiny_checkpoint(tmp_path / "t.safetensors"), tmp_path / "zoom.safetensors", metadata={"gfr_crop_zoom": zoom}
    )
    with pytest.raises(ChecksumError, match=r"gfr_crop_zoom .* is outside 0.5-3; the metadata is damaged"):
        FaceRestorer.from_pretrained(str(bad))


def test_a_wrong_architecture_in_the_metadata_says_so(tmp_path):
    bad = _rewrite(
        tiny_checkpoint(tmp_path / "t.safetensors"), tmp_path / "arch.safetensors", metadata={"gfr_arch": "gpen"}
    )
    with pytest.raises(ChecksumError, match=r"metadata \(arch 'gpen'\) does not describe a model gfr can build"):
        load_model(bad)
    other = _rewrite(
        tiny_checkpoint(tmp_path / "t.safetensors"), tmp_path / "x.safetensors", metadata={"gfr_arch": "nope"}
    )
    with pytest.raises(ChecksumError, match="metadata is damaged or edited"):
        load_model(other)


def test_random_bytes_are_a_corrupt_file_not_an_unsafe_pickle(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(b"\x80" + bytes(range(256)) * 8)  # starts like a pickle, then garbage
    with pytest.raises(ChecksumError, match="not a readable PyTorch checkpoint") as err:
        load_model(path)
    assert "code execution" not in str(err.value)


def test_a_checkpoint_holding_a_non_tensor_says_so(tmp_path):
    torch.save({"params_ema": {"conv_body_first.weight": 5}}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="holds a int at 'conv_body_first.weight', not a tensor"):
        load_model(tmp_path / "odd.pth")


def test_nan_weights_are_refused_at_load(tmp_path):
    src = tiny_checkpoint(tmp_path / "t.safetensors")
    with safe_open(str(src), "pt") as f:
        key = next(k for k in f.keys() if f.get_tensor(k).is_floating_point() and f.get_tensor(k).numel() > 1)
        value = f.get_tensor(key).clone()
    value.view(-1)[0] = float("nan")
    bad = _rewrite(src, tmp_path / "nan.safetensors", tensors={key: value})
    with pytest.raises(ChecksumError, match="holds NaN or infinite values"):
        load_model(bad)
    assert load_model(src) is not None  # the same file without the NaN loads


def test_a_corrupt_cached_parser_is_skipped_with_one_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GFR_CACHE", str(tmp_path))
    parser = local_path(get_card("parsenet"))
    parser.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": {"conv1.weight": 5}}, parser)  # a number where a tensor belongs: the old code crashed
    (tmp_path / "digests.json").write_text(json.dumps({}))
    with caplog.at_level(logging.WARNING):
        r = FaceRestorer.from_pretrained("embedded")  # the parser is optional: the restorer still loads
    assert r.parser is None and "not using the cached parsenet" in caplog.text


@pytest.mark.slow
def test_a_damaged_or_replaced_onnx_export_is_exported_again(tmp_path, monkeypatch, caplog):
    """#37 items 10 and 14: the cached export is checked against its own recorded sha256."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    monkeypatch.setenv("GFR_CACHE", str(tmp_path))
    photo = np.asarray(read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama.jpg").rgb[::8, ::8])
    ref = FaceRestorer.from_pretrained("embedded", backend="onnxruntime")(photo, upscale=1).image
    (path,) = (tmp_path / "onnx").glob("*.onnx")
    assert path.with_name(path.name + ".sha256").read_text().strip() == sha256_file(path)

    graph = onnx.load(str(path))  # a valid graph that computes something else, its metadata kept
    init = graph.graph.initializer[0]
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 3, init.name))
    onnx.save(graph, str(path))
    path_bytes = path.read_bytes()
    with caplog.at_level(logging.WARNING):
        out = FaceRestorer.from_pretrained("embedded", backend="onnxruntime")(photo, upscale=1).image
    assert "does not match its recorded sha256" in caplog.text and path.read_bytes() != path_bytes
    assert np.abs(out.astype(int) - ref).max() <= 1

    path.write_bytes(path.read_bytes()[:1000])  # truncated
    out = FaceRestorer.from_pretrained("embedded", backend="onnxruntime")(photo, upscale=1).image
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_an_unwritable_onnx_cache_is_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("GFR_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(ModelUnavailableError, match="cannot write the ONNX export .*set GFR_CACHE to a writable"):
        FaceRestorer.from_pretrained("embedded", backend="onnxruntime")
