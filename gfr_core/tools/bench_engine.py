"""``gfr bench --engine ray``: photos per second of ``gfr restore`` with the local engine and with Ray.

Both run as the user runs them (a fresh ``gfr restore`` process over a folder, model loading, Ray's start
and its actor pool included), on the same photos: synthetic 640x480 photos with two faces rendered by
``embedded-prior``. The difference is Ray's overhead on one machine; its gain comes with more machines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["bench_engine", "format_engine_report"]


def bench_engine(model: str = "embedded", *, photos: int = 40, engine: str = "ray") -> dict[str, Any]:
    """Seconds and photos per second of ``gfr restore`` over ``photos`` photos, locally and with ``engine``."""
    from PIL import Image

    from .bench_photo import synthetic_photo

    base = synthetic_photo(640, 480, 2, face_px=200)
    runs = []
    with tempfile.TemporaryDirectory(prefix="gfr-bench-engine-") as d:
        src = Path(d) / "photos"
        src.mkdir()
        for i in range(photos):  # each photo a little different (shifted), so none is a cached copy
            Image.fromarray(base[:, (i % 16) * 4 :][:, : 640 - 64]).save(src / f"p{i:03d}.png")
        env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
        for name in ("local", engine):
            out = Path(d) / f"out-{name}"
            cmd = [sys.executable, "-m", "gfr_core", "restore", str(src), "-o", str(out), "--model", model, "-q"]
            cmd += ["--engine", name]
            t = time.perf_counter()
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - t
            if res.returncode != 0:
                tail = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit code {res.returncode}"
                runs.append(dict(engine=name, error=tail))
                continue
            written = len(list(out.glob("*.png")))
            runs.append(dict(engine=name, photos=written, seconds=seconds, photos_per_second=written / seconds))
    return dict(model=model, photos=photos, photo="576x480, two faces", cpus=os.cpu_count(), runs=runs)


def format_engine_report(report: dict[str, Any]) -> str:
    """Markdown table of :func:`bench_engine`'s result."""
    lines = [
        f"engines ({report['model']}; {report['photos']} photos of {report['photo']}; {report['cpus']} CPUs; "
        "each a fresh `gfr restore` process: start-up and model loading included)",
        "",
        "| engine | photos | seconds | photos per second |",
        "|---|---:|---:|---:|",
    ]
    for r in report["runs"]:
        if "error" in r:
            lines.append(f"| {r['engine']} | failed: {r['error']} | | |")
        else:
            lines.append(f"| {r['engine']} | {r['photos']} | {r['seconds']:.1f} | {r['photos_per_second']:.2f} |")
    return "\n".join(lines)
