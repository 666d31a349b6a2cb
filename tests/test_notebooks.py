"""Every analysis notebook executes top to bottom (fast mode) and produces its figures and tables."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
sys.path.insert(0, str(NB_DIR))

from build_notebooks import NOTEBOOKS, build  # noqa: E402


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_committed_notebook_matches_its_source(name):
    committed = nbformat.read(NB_DIR / name, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in build(name).cells]
    assert (NB_DIR / name).stat().st_size < 5_000_000
    images = sum("image/png" in o.get("data", {}) for c in committed.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 2, f"{name} was committed without its figures"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_executes(name, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("GFR_NB_FAST", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = build(name)
    t0 = time.time()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB_DIR)}}).execute()
    elapsed = time.time() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
    print(f"{name}: {elapsed:.1f}s")


def test_notebooks_use_only_the_public_api():
    import re

    import gfr_core

    for name in NOTEBOOKS:
        src = "\n".join(c.source for c in build(name).cells)
        assert "from gfr_core." not in src and "import gfr_core." not in src, name
        for names in re.findall(r"from gfr_core import ([^\n]+)", src):
            for item in names.split(","):
                assert item.strip().split(" as ")[0] in gfr_core.__all__, (name, item)
