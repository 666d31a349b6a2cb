"""`gfr bench` short mode: runs, reports every field, and the optimized path matches the fp32 baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_short_json():
    res = subprocess.run([sys.executable, "-m", "gfr_core.cli", "bench", "--short", "--json", "--repeats", "2"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    r = report["results"][0]
    assert r["model"] == "gfpgan-v1.4" and r["face_size"] == 64
    for part in ("baseline", "optimized"):
        for key in ("per_face_median_s", "per_face_min_s", "per_face_max_s", "faces_per_s", "fraction_of_peak", "peak_mem_mb"):
            assert r[part][key] > 0, (part, key)
    assert r["max_abs_diff"] <= 1e-3
    assert r["gflops_per_face"] > 1 and r["matmul_peak_gflops"] > 1
    assert r["speedup_per_face"] == r["baseline"]["per_face_median_s"] / r["optimized"]["per_face_median_s"]
    p = report["pipeline"]
    assert set(p) >= {"detect_s", "align_s", "restore_s", "paste_s", "total_s"}, p
    assert p["faces_found"] == p["faces_placed"] == 4
