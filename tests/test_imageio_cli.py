"""Input handling (formats, EXIF, gray, RGBA, 16-bit, tiny, huge, broken files) and the `gfr restore` CLI."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gfr_core.io import ImageInputError, read_image, write_image
from gfr_core.restore import FaceRestorer, InferenceSettings
from gfr_core.tools.cli import main
from helpers import smooth_photo, tiny_checkpoint, tiny_restorer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "fmt,ext", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("TIFF", ".tif")]
)
def test_formats_roundtrip(tmp_path, fmt, ext):
    img = smooth_photo(50, 70)
    p = tmp_path / f"a{ext}"
    Image.fromarray(img).save(p, format=fmt)
    loaded = read_image(p)
    assert loaded.rgb.shape == (50, 70, 3) and loaded.format == fmt
    tol = 0 if fmt in ("PNG", "BMP", "TIFF") else 40
    assert np.abs(loaded.rgb.astype(int) - img).max() <= tol


def test_exif_orientation_is_applied(tmp_path):
    img = smooth_photo(40, 60)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    p = tmp_path / "rot.jpg"
    Image.fromarray(img).save(p, exif=exif)
    loaded = read_image(p)
    assert loaded.rgb.shape == (60, 40, 3) and loaded.exif_rotated


def test_gray_stays_gray_and_rgba_keeps_alpha(tmp_path):
    r = tiny_restorer()
    gray = smooth_photo(40, 50)[..., 1]
    Image.fromarray(gray).save(tmp_path / "g.png")
    res = r(read_image(tmp_path / "g.png"), upscale=2)
    assert res.image.shape == (80, 100)
    rgba = np.dstack([smooth_photo(40, 50), np.tile(np.arange(50, dtype=np.uint8) * 5, (40, 1))])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    res = r(read_image(tmp_path / "a.png"), upscale=2)
    assert res.image.shape == (80, 100, 4)
    assert abs(int(res.image[40, 99, 3]) - 245) <= 3 and res.image[40, 0, 3] <= 3  # alpha resized, kept


def test_16bit_png(tmp_path):
    g16 = smooth_photo(30, 30)[..., 0].astype(np.uint16) * 257
    Image.fromarray(g16).save(tmp_path / "d.png")
    loaded = read_image(tmp_path / "d.png")
    assert loaded.bit_depth == 16 and loaded.gray
    assert np.abs(loaded.rgb[..., 0].astype(int) - smooth_photo(30, 30)[..., 0]).max() <= 1
    assert any("16-bit" in n for n in loaded.notes)


def test_tiny_image_is_fine():
    res = tiny_restorer()(smooth_photo(4, 5), upscale=2)
    assert res.image.shape == (8, 10, 3) and res.faces == []


def test_huge_image_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("GFR_MAX_PIXELS", "10000")
    Image.fromarray(smooth_photo(200, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageInputError, match="exceeds the 0 MP limit|GFR_MAX_PIXELS"):
        read_image(tmp_path / "big.png")


@pytest.mark.parametrize(
    "name,data,expect",
    [
        ("empty.png", b"", "empty"),
        ("text.jpg", b"hello, this is not an image\n" * 20, "not an image"),
        ("noise.png", bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)), "not an image"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, data, expect):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(ImageInputError, match=expect) as err:
        read_image(p)
    assert "\n" not in str(err.value)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(smooth_photo(200, 200)).save(buf, format="JPEG")
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        read_image(p)


def test_write_is_atomic_and_never_overwrites(tmp_path):
    p = tmp_path / "o.png"
    write_image(p, smooth_photo(10, 10))
    with pytest.raises(FileExistsError):
        write_image(p, smooth_photo(10, 10))
    assert [f.name for f in tmp_path.iterdir()] == ["o.png"]


def _photos(folder: Path) -> None:
    folder.mkdir()
    Image.fromarray(smooth_photo(40, 60, 1)).save(folder / "one.jpg")
    sub = folder / "sub"
    sub.mkdir()
    Image.fromarray(np.dstack([smooth_photo(30, 30, 2), np.full((30, 30), 128, np.uint8)]), "RGBA").save(
        sub / "two.png"
    )
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is broken")


def test_cli_restore_keeps_going_and_reports(tmp_path, capsys):
    model = tiny_checkpoint(tmp_path / "tiny.safetensors")
    _photos(tmp_path / "in")
    rc = main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model), "--save-faces"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.png" in err and "Traceback" not in err and "1 of 3 file(s) failed" in err
    assert Image.open(tmp_path / "out" / "one.jpg").size == (120, 80)
    two = Image.open(tmp_path / "out" / "sub" / "two.png")
    assert two.size == (60, 60) and two.mode == "RGBA"
    assert not list((tmp_path / "out").rglob(".gfr-*"))
    # a second run does not overwrite earlier outputs unless asked: refused before any work (issue #34 item 10)
    assert main(["restore", str(tmp_path / "in" / "one.jpg"), "-o", str(tmp_path / "out"), "--model", str(model)]) == 2
    assert "1 of 1 output(s) already exist" in capsys.readouterr().err
    assert (
        main(
            [
                "restore",
                str(tmp_path / "in" / "one.jpg"),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(model),
                "--overwrite",
            ]
        )
        == 0
    )


def test_cli_never_overwrites_an_input(tmp_path, caplog):
    model = tiny_checkpoint(tmp_path / "tiny.safetensors")
    d = tmp_path / "pics"
    d.mkdir()
    Image.fromarray(smooth_photo(20, 20)).save(d / "x.png")
    before = (d / "x.png").read_bytes()
    rc = main(["restore", str(d / "x.png"), "-o", str(d), "--model", str(model), "--overwrite"])
    assert rc == 0 and "x.png is an input file; writing" in caplog.text
    assert (d / "x.png").read_bytes() == before and (d / "x-png.png").is_file()


def test_cli_user_errors_are_one_line(tmp_path):
    env_cmd = [sys.executable, "-m", "gfr_core"]
    res = subprocess.run(
        env_cmd + ["restore", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no such file" in res.stderr
    res = subprocess.run(
        env_cmd + ["restore", str(ROOT / "tests" / "helpers.py"), "-o", str(tmp_path / "o"), "--model", "gfpgan-9"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 2 and "unknown model" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(env_cmd + ["bench", "--short", "--device", "gpu"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "unknown device 'gpu'" in res.stderr, res.stderr


def test_cli_train_setting_errors_are_one_line(tmp_path, capsys):
    from gfr_core.tools.cli import main

    rc = main(["train", "restorer", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--trainable", "encoder"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "trainable must be one of all, detail" in err, err
    assert not (tmp_path / "o").exists()


def test_cli_cuda_without_a_gpu_is_a_one_line_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    for cmd in (
        ["bench", "--short", "--device", "cuda"],
        ["restore", str(tmp_path), "-o", str(tmp_path / "o"), "--device", "cuda:0"],
    ):
        res = subprocess.run([sys.executable, "-m", "gfr_core", *cmd], capture_output=True, text=True, cwd=ROOT)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "use --device cpu" in res.stderr, res.stderr


@pytest.mark.slow
def test_cli_restore_compiled_matches_eager(tmp_path):
    """`--compile` (torch.compile; a smaller last batch is padded to the compiled shape) gives the eager result."""
    model = tiny_checkpoint(tmp_path / "tiny.safetensors")
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(smooth_photo(32, 32, i)).save(tmp_path / "in" / f"f{i}.png")
    common = [str(tmp_path / "in"), "--model", str(model), "--aligned", "--upscale", "1", "-q"]
    assert main(["restore", *common, "-o", str(tmp_path / "eager")]) == 0
    assert main(["restore", *common, "-o", str(tmp_path / "compiled"), "--compile"]) == 0
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "eager" / f"f{i}.png"), np.int16)
        b = np.asarray(Image.open(tmp_path / "compiled" / f"f{i}.png"), np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1
    # three faces in one call: padded to a batch of four for the compiled model, the padding dropped again
    crops = np.stack([smooth_photo(64, 64, i) for i in range(3)])
    eager = FaceRestorer.from_pretrained(str(model)).restore_faces(crops)
    compiled = FaceRestorer.from_pretrained(str(model), settings=InferenceSettings.for_device("cpu", compile=True))
    assert np.abs(compiled.restore_faces(crops).astype(np.int16) - eager).max() <= 1
