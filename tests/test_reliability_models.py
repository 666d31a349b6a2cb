"""Reliability, round two (issue #37): bad model files and a bad cache get one right line. Each test fails on
the code before it: items 7 (config values in a file's metadata are bounded), 8 (a corrupt optional
parser is skipped), 12 (random bytes are not "a pickle that needs code"; a wrong architecture in the
metadata says so) and 15 (NaN weights are refused).
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from gfr_core import FaceRestorer, load_model
from gfr_core.hub import ChecksumError, get_card, local_path
from helpers import tiny_checkpoint


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
