"""Reliability, round two (issue #37): what a run does with its files. Each test fails on the code before it.

Items: 4 (a name too long stops only its file), 5 (an output folder that cannot be written is refused before
any work), 6 (a full disk stops only its file), 12 (limits given as NaN, negative or text get their own
message), 16 (EXIF and ICC are kept), 17 (inputs are deduplicated; gfr's own outputs are never inputs).
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
from PIL import Image, ImageCms

from gfr_core.io import image as image_mod
from gfr_core.io.image import ImageInputError, is_gfr_output, max_pixels, read_image, write_image
from gfr_core.tools.cli import main
from helpers import smooth_photo, tiny_checkpoint


@pytest.fixture
def model(tmp_path):
    return str(tiny_checkpoint(tmp_path / "tiny.safetensors"))


def _photo(path, h=48, w=48, **save):
    Image.fromarray(smooth_photo(h, w)).save(path, **save)
    return path


def test_an_output_name_too_long_is_shortened_and_every_file_written(tmp_path, model, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    stem = "a" * 248
    _photo(inp / f"{stem}.jpg")
    _photo(inp / f"{stem}.jpeg")  # its output <stem>-jpeg.jpg would be 257 bytes: too long to exist
    _photo(inp / "b.png")
    rc = main(["restore", str(inp), "-o", str(tmp_path / "out"), "--model", model, "--aligned"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err and "failed" not in err, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(names) == 3 and "b.png" in names and f"{stem}.jpg" in names  # the input that has its name keeps it
    (other,) = [n for n in names if n not in ("b.png", f"{stem}.jpg")]
    assert other.endswith("-jpeg.jpg") and len(other.encode()) <= 255


def test_face_crops_of_a_long_name_are_shortened_and_written(tmp_path, model, capsys):
    """#41.12: the photo was written, yet the run said "1 of 1 failed" naming gfr's temporary file."""
    inp = tmp_path / "in"
    inp.mkdir()
    _photo(inp / ("a" * 246 + ".png"))  # fits; "<name>_00_restored.png" would not
    rc = main(["restore", str(inp), "-o", str(tmp_path / "out"), "--model", model, "--aligned", "--save-faces"])
    err = capsys.readouterr().err
    assert rc == 0 and "failed" not in err, err
    crops = sorted(p.name for p in (tmp_path / "out" / "faces").iterdir())
    assert len(crops) == 2 and crops[0].endswith("_00_input.png") and crops[1].endswith("_00_restored.png")
    assert all(len(c.encode()) <= 255 and c.startswith("a" * 200) for c in crops)
    rc = main(["restore", str(inp), "-o", str(tmp_path / "out"), "--model", model, "--aligned", "--save-faces"])
    assert rc == 2 and "already exist" in capsys.readouterr().err  # the rerun refuses: everything was written


def test_a_full_disk_fails_its_file_and_the_next_is_tried(tmp_path, model, capsys, monkeypatch):
    for n in ("a", "b"):
        _photo(tmp_path / f"{n}.png")
    real = image_mod.Image.Image.save
    calls = []

    def full_once(self, fp, *args, **kwargs):  # the first encode hits ENOSPC, as a full disk does
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, fp, *args, **kwargs)

    monkeypatch.setattr(image_mod.Image.Image, "save", full_once)
    out = tmp_path / "out"
    rc = main(["restore", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out), "--model", model])
    err = capsys.readouterr().err
    assert rc == 1 and "No space left on device" in err and "free some disk space" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]  # a.png failed whole, nothing half-written


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, model, monkeypatch, capsys):
    _photo(tmp_path / "a.png")
    (tmp_path / "file").write_text("not a folder")
    ran = []
    monkeypatch.setattr("gfr_core.restore.FaceRestorer.from_pretrained", lambda *a, **k: ran.append(1))
    # -o under a file: used to fail with NotADirectoryError after the model ran
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "file" / "out"), "--model", model]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and not ran

    def denied(*args, **kwargs):  # what a read-only folder answers (root is never refused by chmod)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", denied)
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "ro"), "--model", model]) == 2
    err = capsys.readouterr().err
    assert "cannot be written (Permission denied)" in err and err.count("\n") == 1 and not ran


def test_cli_errors_say_what_is_wrong(tmp_path, model, capsys):
    _photo(tmp_path / "a.png")
    for bad in ("nan", "-5", "abc"):
        with pytest.raises(SystemExit):
            main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--max-output-megapixels", bad])
        err = capsys.readouterr().err
        assert "give a positive number of megapixels" in err and "math domain" not in err


@pytest.mark.parametrize("value", ["-1", "0", "abc"])
def test_gfr_max_pixels_must_be_positive(monkeypatch, value):
    monkeypatch.setenv("GFR_MAX_PIXELS", value)
    with pytest.raises(ImageInputError, match="GFR_MAX_PIXELS must be a positive whole number"):
        max_pixels()


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tif"])
def test_exif_and_icc_are_kept_with_the_orientation_reset(tmp_path, model, ext):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    exif[0x010F] = "Canon"
    _photo(tmp_path / f"in.{ext}", 40, 64, exif=exif.tobytes(), icc_profile=icc)  # written as it came
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / f"in.{ext}"), "-o", str(out), "--model", model]) == 0
    with Image.open(out / f"in.{ext}") as im:
        e = im.getexif()
        assert im.size == (40 * 2, 64 * 2)  # upright, then upscaled
        assert e.get(0x0112, 1) == 1 and e.get(0x010F) == "Canon" and im.info.get("icc_profile") == icc
    assert is_gfr_output(out / f"in.{ext}") and not is_gfr_output(tmp_path / f"in.{ext}")


def test_inputs_are_deduplicated_and_never_gfrs_own_outputs(tmp_path, model, caplog):
    d = tmp_path / "pics"
    d.mkdir()
    _photo(d / "x.jpg")
    # the same file named twice: restored once, no failure against the output this run just wrote
    assert main(["restore", str(d / "x.jpg"), str(d / "x.jpg"), "-o", str(tmp_path / "o"), "--model", model]) == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["x.jpg"]
    # -o the input folder: the rerun does not restore its own earlier output
    assert main(["restore", str(d), "-o", str(d), "--model", model]) == 0
    first = sorted(p.name for p in d.iterdir())
    assert first == ["x-jpg.jpg", "x.jpg"]
    caplog.clear()
    assert main(["restore", str(d), "-o", str(d), "--model", model, "--overwrite"]) == 0
    assert sorted(p.name for p in d.iterdir()) == first  # no x-jpg-jpg.jpg
    assert "skipped 1 file(s) that gfr wrote itself" in caplog.text
    # -o inside the input folder: nothing under it is an input, on any rerun
    nest = tmp_path / "nest"
    nest.mkdir()
    _photo(nest / "good.png")
    for _ in range(2):
        assert main(["restore", str(nest), "-o", str(nest / "out"), "--model", model, "--overwrite"]) == 0
    assert sorted(p.relative_to(nest).as_posix() for p in nest.rglob("*.png")) == ["good.png", "out/good.png"]


def test_a_gfr_output_named_explicitly_is_restored_again(tmp_path, model):
    src = write_image(tmp_path / "restored.png", smooth_photo(32, 32))
    assert is_gfr_output(src)
    assert main(["restore", str(src), "-o", str(tmp_path / "again"), "--model", model]) == 0
    assert read_image(tmp_path / "again" / "restored.png").rgb.shape == (64, 64, 3)


def test_a_40000x4_strip_is_only_upscaled(tmp_path, model, capsys):
    """#37 item 3: cv2 used to fail ('inv_scale_x > 0') shrinking the strip for the detector."""
    Image.fromarray(np.full((4, 40000, 3), 128, np.uint8)).save(tmp_path / "strip.png")
    assert main(["restore", str(tmp_path / "strip.png"), "-o", str(tmp_path / "out"), "--model", model]) == 0
    assert "no face found: the photo was only upscaled" in capsys.readouterr().err
    assert read_image(tmp_path / "out" / "strip.png").rgb.shape == (8, 80000, 3)
