"""ONNX export and the ONNX Runtime backend (#27): checked graphs, metadata, dynamic axes, parity, whole photo.

Every distinct architecture among the registry's restorers and upsamplers is exported in its full config
(the released checkpoint's): the official ones with seeded random weights (no download), the project's
own with their shipped weights; each must match its PyTorch forward to 1e-4.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gfr_core import FaceRestorer, read_image
from gfr_core.hub import ModelUnavailableError, build_model, family, get_card, list_models, load_model
from gfr_core.hub.onnx import NOT_EXPORTED, ONNX_LAYOUTS, example_input, export_onnx, onnx_max_abs_diff, onnx_session
from gfr_core.models.family import config_from_dict
from gfr_core.models.gfpgan import GFPGAN
from gfr_core.tools.cli import main
from helpers import TINY_GFPGAN

ROOT = Path(__file__).resolve().parents[1]


def _architectures() -> list[str]:
    """One registered model per distinct (family, full config) among those that export to ONNX."""
    seen: dict[str, str] = {}
    for name in list_models():
        card = get_card(name)
        if card.task in ONNX_LAYOUTS and card.arch not in NOT_EXPORTED:
            seen.setdefault(repr(config_from_dict(family(card.arch).config, card.config)), name)
    return list(seen.values())


def test_the_parity_cases_cover_every_released_architecture():
    names = _architectures()
    # GFPGAN v1.2 / v1.3 / v1.4 share one architecture, and the two Real-ESRGAN cards share another
    for covered in ("gfpgan-v1.4", "gfpgan-v1", "gpen-bfr-512", "gpen-bfr-256", "realesrgan-x4plus", "embedded"):
        assert covered in names
    assert "gfpgan-v1.3" not in names and "realesrgan-x4plus-ncnn" not in names


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (network, its exported file, what the CLI printed), each exported once for this module: the
    project's own models by `gfr export-onnx NAME` (their shipped weights), the official architectures by
    export_onnx with seeded random weights of the full config (no download)."""
    done: dict[str, tuple[torch.nn.Module, Path, str]] = {}

    def get(name: str) -> tuple[torch.nn.Module, Path, str]:
        if name not in done:
            card, path = get_card(name), tmp_path_factory.mktemp(name) / f"{name}.onnx"
            if card.converter == "native":
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    assert main(["export-onnx", name, "-o", str(path)]) == 0
                done[name] = (load_model(name), path, out.getvalue())
            else:
                net = build_model(card, seed=0).eval()
                done[name] = (net, export_onnx(name, path, model=net), "")
        return done[name]

    return get


@pytest.mark.parametrize("name", _architectures())
def test_every_architecture_exports_in_its_full_config_with_parity(exported, name):
    card = get_card(name)
    net, path, _ = exported(name)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # one self-contained file, no temporary left
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    shipped = card.converter == "native"
    assert meta["gfr_model"] == name if shipped else meta["gfr_model"].startswith(f"{name} architecture")
    assert meta["gfr_source_sha256"] == (card.sha256 if shipped else "")
    assert "dynamo=True" in meta["gfr_exporter"] and meta["gfr_noise"].startswith("constant")
    assert meta["gfr_layout"] == ONNX_LAYOUTS[card.task] and meta["gfr_layout"].startswith("(B,3,H,W) float32 RGB")
    assert meta["gfr_license"] == card.license
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and (dims[2:] == ["height", "width"] if card.task == "upsample" else dims[2] == "")
    # traced at batch 2 (and 24x20 for the upsampler): check another batch, and another size
    x = example_input(net, card.task, batch=1, seed=1, hw=(20, 28))
    assert onnx_max_abs_diff(path, net, x) <= 1e-4


@pytest.mark.parametrize("name", ["embedded", "realesrgan-x4plus"])
def test_the_batch_axis_is_dynamic(exported, name):
    net, path, _ = exported(name)
    for b, hw in ((1, (16, 16)), (3, (32, 8)), (5, (12, 20))):
        x = example_input(net, get_card(name).task, batch=b, seed=b, hw=hw)
        assert onnx_max_abs_diff(path, net, x) <= 1e-4, (name, b)


def test_export_leaves_the_callers_network_as_it_was(tmp_path):
    torch.manual_seed(0)
    net = GFPGAN(**TINY_GFPGAN).double()  # e.g. a network kept in another precision (or on a GPU) by its user
    path = export_onnx("tiny", tmp_path / "tiny.onnx", model=net)
    x = example_input(net, "restore", batch=2, seed=3)
    assert onnx_max_abs_diff(path, net, x) <= 1e-4
    assert all(p.dtype == torch.float64 for p in net.parameters())  # traced and checked on an fp32 CPU copy


def test_cli_export_of_the_embedded_model_is_checked_and_prints_its_parity(exported):
    _, path, printed = exported("embedded")
    assert printed.startswith(f"{path}: onnx.checker ok; max abs diff vs PyTorch ")
    assert float(printed.rsplit("PyTorch ", 1)[1].split()[0]) <= 1e-4


def test_export_onnx_refuses_a_bad_output_path_in_one_line_before_any_work(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"not to be overwritten")
    (tmp_path / "afile").write_text("x")
    cases = {
        str(tmp_path): "is a folder; give a file name such as",
        str(photo): "give a file name ending in .onnx",
        str(tmp_path / "afile" / "m.onnx"): "is a file, not a folder",
    }
    for out, message in cases.items():
        assert main(["export-onnx", "embedded", "-o", out]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert photo.read_bytes() == b"not to be overwritten"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "photo.png"]


def test_seeded_random_weights_are_reproducible_and_leave_no_parameter_constant():
    card = get_card("gpen-bfr-256")
    state = torch.random.get_rng_state()
    a, b = build_model(card, seed=0).state_dict(), build_model(card, seed=0).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        build_model(card, seed=1).state_dict()["generator.convs.0.noise_strength"],
        a["generator.convs.0.noise_strength"],
    )
    params = dict(build_model(card, seed=0).named_parameters())
    constant = [k for k, p in params.items() if p.numel() > 1 and bool((p == p.flatten()[0]).all())]
    scalars = [k for k, p in params.items() if p.numel() == 1]
    assert not constant and all(float(params[k].detach()) != 0.0 for k in scalars)  # e.g. every noise strength


def test_gfr_restore_with_onnxruntime_reproduces_pytorch_within_one_level_and_caches_the_export(tmp_path, monkeypatch):
    monkeypatch.setenv("GFR_CACHE", str(tmp_path / "cache"))
    photo = ROOT / "tests" / "fixtures" / "photos-pd" / "obama3.jpg"
    outs = {}
    for backend in ("torch", "onnxruntime"):
        args = [str(photo), "-o", str(tmp_path / backend), "--model", "embedded", "--upscale", "2", "--ext", "png"]
        assert main(["restore", *args, "--backend", backend, "-q"]) == 0
        outs[backend] = read_image(tmp_path / backend / "obama3.png").rgb.astype(int)
    h, w = read_image(photo).rgb.shape[:2]
    assert outs["torch"].shape == outs["onnxruntime"].shape == (2 * h, 2 * w, 3)
    assert np.abs(outs["onnxruntime"] - outs["torch"]).max() <= 1
    (cached,) = (tmp_path / "cache" / "onnx").glob("embedded-*.onnx")  # the CLI run exported it
    assert get_card("embedded").sha256.startswith(cached.stem.split("-")[-1])
    stamp = cached.stat().st_mtime_ns
    assert FaceRestorer.from_pretrained("embedded", backend="onnxruntime").backend == "onnxruntime"
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
