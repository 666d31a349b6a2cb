"""ONNX export and the ONNX Runtime backend (#27): checked graphs, metadata, dynamic batch, parity, whole photo.

Small seeded random-weight configs of each official architecture keep the suite fast; the full configs
were checked with ``gfr export-onnx NAME --random-weights`` (README, benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gfr_core import FaceRestorer, read_image
from gfr_core.hub import ModelUnavailableError, build_model, get_card
from gfr_core.hub.onnx import _Graph, export_onnx, onnx_session
from gfr_core.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "gfpgan-v1.4": dict(
        out_size=64, num_style_feat=32, channel_multiplier=2, narrow=0.0625, sft_half=True, flavour="clean"
    ),
    "gfpgan-v1": dict(
        out_size=64, num_style_feat=32, channel_multiplier=1, narrow=0.0625, sft_half=True, flavour="original"
    ),
    "gpen-bfr-512": dict(size=64, style_dim=32, n_mlp=2, channel_multiplier=1, narrow=0.0625),
    "realesrgan-x4plus": dict(num_feat=8, num_block=1, num_grow_ch=4),
}


def _small(name: str) -> torch.nn.Module:
    import dataclasses

    card = dataclasses.replace(get_card(name), config=SMALL[name])
    torch.manual_seed(0)
    net = build_model(card).eval()
    with torch.no_grad():  # move every parameter off its initial value, as a trained network is
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("name", list(SMALL))
def test_export_matches_pytorch_at_every_batch_size(tmp_path, name):
    net = _small(name)
    path = export_onnx(name, tmp_path / f"{name}.onnx", model=net)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["gfr_model"].startswith(name) and "dynamo=True" in meta["gfr_exporter"]
    assert meta["gfr_layout"].startswith("(B,3,H,W) float32 RGB in ")
    assert meta["gfr_license"] == get_card(name).license and meta["gfr_noise"].startswith("constant")
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnx_session(path)
    graph = _Graph(net)
    up = get_card(name).task == "upsample"
    for b, (h, w) in zip((1, 3, 5), ((24, 40), (32, 32), (16, 20)) if up else ((64, 64),) * 3):
        x = torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(b))
        x = x if up else x * 2 - 1
        with torch.no_grad():
            ref = graph(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == ref.shape and float(np.abs(got - ref).max()) <= 1e-4, (name, b)


def test_cli_export_of_the_embedded_model_is_checked_and_records_its_source(tmp_path, capsys):
    out = tmp_path / "e.onnx"
    assert main(["export-onnx", "embedded", "-o", str(out)]) == 0
    line = capsys.readouterr().out
    assert "onnx.checker ok; max abs diff vs PyTorch" in line
    assert float(line.rsplit("PyTorch ", 1)[1].split()[0]) <= 1e-4
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["gfr_model"] == "embedded" and meta["gfr_source_sha256"] == get_card("embedded").sha256
    assert [p.name for p in tmp_path.iterdir()] == ["e.onnx"]  # no temporary file left


def test_the_onnxruntime_backend_restores_a_photo_within_one_level_and_caches_the_export(tmp_path, monkeypatch):
    monkeypatch.setenv("GFR_CACHE", str(tmp_path))
    img = read_image(ROOT / "tests" / "fixtures" / "photos-pd" / "obama3.jpg")
    ref = FaceRestorer.from_pretrained("embedded")(img, upscale=2).image.astype(int)
    ort = FaceRestorer.from_pretrained("embedded", backend="onnxruntime")
    assert ort.backend == "onnxruntime"
    got = ort(img, upscale=2).image.astype(int)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 1
    (cached,) = (tmp_path / "onnx").glob("embedded-*.onnx")
    assert get_card("embedded").sha256.startswith(cached.stem.split("-")[-1])
    stamp = cached.stat().st_mtime_ns
    FaceRestorer.from_pretrained("embedded", backend="onnxruntime")
    assert cached.stat().st_mtime_ns == stamp  # keyed by the checkpoint's sha256: not exported again


def test_missing_onnx_runtime_is_one_line_with_the_install_command(monkeypatch):
    import importlib.util as iu

    real = iu.find_spec
    monkeypatch.setattr(iu, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a))
    with pytest.raises(ModelUnavailableError, match=r"pip install -e '\.\[onnx\]'"):
        onnx_session(os.devnull)
    with pytest.raises(ValueError, match="backend must be"):
        FaceRestorer.from_pretrained("embedded", backend="tensorrt")  # type: ignore[arg-type]


def test_bench_times_onnxruntime_beside_both_pytorch_paths():
    from gfr_core.tools.bench import bench_backends, format_report

    b = bench_backends("embedded", batch=2, repeats=1)
    for k in ("eager_per_face_s", "torch_optimized_per_face_s", "onnxruntime_per_face_s"):
        assert b[k] > 0, k
    assert b["onnxruntime_vs_eager"] == pytest.approx(b["onnxruntime_per_face_s"] / b["eager_per_face_s"])
    assert b["onnx_max_abs_diff"] <= 1e-4
    line = format_report({"results": [], "backends": [b]})
    assert line.startswith("backends (embedded @ 64px") and "onnxruntime / eager" in line
