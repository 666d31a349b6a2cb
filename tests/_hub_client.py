"""Subprocess side of the Hub tests: register a small card, load it through gfr_core.hub, report.

Run in a child process because the Hub client reads HF_ENDPOINT / HF_HUB_OFFLINE / HF_HUB_CACHE at import.
Prints one line: ``OK <max abs diff vs the fixture's official output>`` or ``ERR <ExceptionType>: <message>``.
"""

from __future__ import annotations

import json
import sys

import torch


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
