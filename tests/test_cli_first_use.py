"""First use of the CLI (issue #34 items 10 and 11): a rerun into an existing output folder is refused before
any work, or resumed with --skip-existing; -o has a default; --ext lists one form of each; --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from gfr_core.tools.cli import main
from helpers import smooth_photo, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _photos(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(smooth_photo(32, 32, seed=i)).save(folder / f"p{i}.png")


def test_a_rerun_is_refused_before_the_model_loads_and_skip_existing_resumes(tmp_path, capsys, monkeypatch):
    model = str(tiny_checkpoint(tmp_path / "tiny.safetensors"))
    _photos(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "in"), "-o", str(out), "--model", model]) == 0
    (out / "p1.png").unlink()  # a killed run: one output missing
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    loads = []
    real = __import__("gfr_core").FaceRestorer.from_pretrained
    monkeypatch.setattr(
        "gfr_core.restore.FaceRestorer.from_pretrained", lambda *a, **k: loads.append(1) or real(*a, **k)
    )
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "in"), "-o", str(out), "--model", model]) == 2
    err = capsys.readouterr().err
    assert "2 of 3 output(s) already exist" in err and "--skip-existing" in err and not loads  # nothing was done
    assert main(["restore", str(tmp_path / "in"), "-o", str(out), "--model", model, "--skip-existing"]) == 0
    assert "2 of 3 already restored, skipped" in capsys.readouterr().err and len(loads) == 1
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())  # the finished ones untouched


def test_the_output_folder_has_a_default_said_once(tmp_path, capsys):
    model = str(tiny_checkpoint(tmp_path / "tiny.safetensors"))
    _photos(tmp_path / "holiday", 1)
    assert main(["restore", str(tmp_path / "holiday"), "--model", model]) == 0
    err = capsys.readouterr().err
    assert err.count("writing to") == 1 and "holiday-restored" in err
    assert (tmp_path / "holiday-restored" / "p0.png").is_file()
    assert main(["restore", str(tmp_path / "holiday" / "p0.png"), "--model", model]) == 0
    assert (tmp_path / "holiday" / "p0-restored" / "p0.png").is_file()


def test_version_and_the_ext_choices():
    res = subprocess.run([sys.executable, "-m", "gfr_core", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip().startswith("gfr 0.")
    res = subprocess.run(
        [sys.executable, "-m", "gfr_core", "restore", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert "{auto,png,jpg}" in res.stdout and ".png" not in res.stdout.split("--ext")[1].split("\n")[0]
