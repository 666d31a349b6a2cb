"""Exactness against the official architectures: parity outputs and full-size state_dict layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from gfr_core.tools.verify import main, verify_manifest, verify_parity

ROOT = Path(__file__).resolve().parents[1]
PARITY = sorted((ROOT / "tests" / "fixtures" / "parity").glob("*.safetensors"))
MANIFESTS = sorted((ROOT / "tests" / "fixtures" / "manifests").glob("*.json"))
SHARED = ROOT.parent / "shared" / "fixtures"


@pytest.mark.parametrize("path", PARITY, ids=lambda p: p.stem)
def test_parity(path):
    assert verify_parity(path) <= 1e-4


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_manifest(path):
    n, m, problems = verify_manifest(path)
    assert n > 100 and m == 0, problems


def test_cli_prints_a_line_per_file_and_exits_zero():
    files = [str(p) for p in PARITY + MANIFESTS]
    res = subprocess.run([sys.executable, "-m", "gfr_core.verify", *files], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(files)
    for f, line in zip(files, lines):
        assert line.startswith(f + " ")
        assert "max_abs_diff=" in line or ("keys=" in line and "mismatches=0" in line)


def test_perturbed_weight_is_detected(tmp_path, capsys):
    t = load_file(str(PARITY[0]))
    from safetensors import safe_open

    with safe_open(str(PARITY[0]), "pt") as f:
        meta = f.metadata()
    key = next(k for k in t if k.startswith("state_dict.") and k.endswith("final_linear.weight"))
    t[key] = t[key] + 1e-2
    bad = tmp_path / "bad.safetensors"
    save_file(t, str(bad), metadata=meta)
    assert main([str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_manifest_mismatch_is_detected(tmp_path, capsys):
    man = json.loads(MANIFESTS[0].read_text())
    man["keys"] = man["keys"][:-1] + [[man["keys"][-1][0], [7, 7], "float32"]]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(man))
    assert main([str(bad)]) == 1
    assert "mismatches=1" in capsys.readouterr().out


@pytest.mark.skipif(not (SHARED / "parity").is_dir(), reason="optional: ../shared/fixtures not present")
def test_all_shared_fixtures():
    files = sorted(map(str, (SHARED / "parity").glob("*.safetensors"))) + sorted(
        map(str, (SHARED / "manifests").glob("*.json"))
    )
    assert main(files) == 0
