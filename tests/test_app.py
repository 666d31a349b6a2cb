"""The app module stays thin: importing it loads no model and no UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_app_import_is_light():
    code = "import sys, app; print('torch' in sys.modules, 'gradio' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False False"


def test_demo_builds_and_lists_every_model():
    from demo import build_demo
    from demo.ui import models_markdown
    from gfr_core import list_models

    md = models_markdown()
    for name in list_models():
        assert f"**{name}**" in md
    build_demo()
