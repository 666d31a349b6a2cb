"""Subprocess side of the Hub tests: register a small card, load it through gfr_core.hub, report.

Run in a child process because the Hub client reads HF_ENDPOINT / HF_HUB_OFFLINE / HF_HUB_CACHE at import.
Prints one line: ``OK <max abs diff vs the fixture's official output>`` or ``ERR <ExceptionType>: <message>``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "parity" / "gfpgan_clean_sfthalf_cmul2.safetensors"


def run_in_child(card: dict, env: dict[str, str]) -> str:
    """Register ``card`` and load it in a fresh process with ``env`` added; its one-line report."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_DISABLE_TELEMETRY="1", **env)
    spec = json.dumps({"card": card, "fixture": str(FIXTURE)})
    res = subprocess.run([sys.executable, __file__, spec], env=full, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1]


def main() -> None:
    spec = json.loads(sys.argv[1])
    from gfr_core import hub
    from gfr_core.tools.verify import verify_parity  # noqa: F401  (import check only)

    hub.register(hub.ModelCard(**spec["card"]))
    try:
        model = hub.load_model(spec["card"]["name"])
    except Exception as exc:  # the test inspects the type and message
        print(f"ERR {type(exc).__name__}: {exc}")
        return
    from safetensors.torch import load_file

    t = load_file(spec["fixture"])
    with torch.no_grad():
        out = model(t["input.x"])
    print(f"OK {float((out - t['output.0']).abs().max()):.3g}")


if __name__ == "__main__":
    main()
