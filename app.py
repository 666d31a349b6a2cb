"""gfr web app: ``python app.py`` (also the entry point of the Hugging Face Space).

Thin by design: the layout lives in ``demo/``; models load lazily on first use.
"""

from __future__ import annotations

import os
import re
import signal
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _upload_limit() -> str:
    """``GFR_MAX_UPLOAD`` (default 25mb), checked: a size such as ``25mb``, ``500kb`` or ``1gb``."""
    value = os.environ.get("GFR_MAX_UPLOAD", "25mb").strip()
    match = re.fullmatch(r"(?i)(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)", value)
    if not match or float(match.group(1)) <= 0:
        sys.exit(f"gfr app: GFR_MAX_UPLOAD must be a size above zero such as 25mb, 500kb or 1gb, got {value!r}")
    return value


def _server_port() -> int:
    """``GRADIO_SERVER_PORT`` (default 7860), checked: a port number 1-65535."""
    value = os.environ.get("GRADIO_SERVER_PORT", "7860").strip()
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        sys.exit(f"gfr app: GRADIO_SERVER_PORT must be a port number from 1 to 65535, got {value!r}")
    return int(value)


def main() -> None:
    upload_limit, port = _upload_limit(), _server_port()  # before anything heavy: a bad setting is one line
    try:  # a Hugging Face ZeroGPU Space: `spaces` must come before torch (demo/gpu.py)
        import spaces  # noqa: F401
    except ImportError:
        pass

    import gradio as gr

    from demo import build_demo, gpu, logic, ui, video
    from gfr_core.io import ImageInputError, max_pixels
    from gfr_core.restore import reuse_freed_memory

    try:  # the limits a shared server sets: a bad one is one line, before the app starts
        logic.max_output_pixels()
        video.video_limits()
        max_pixels()
    except gr.Error as exc:
        sys.exit(f"gfr app: {exc.message}")
    except ImageInputError as exc:
        sys.exit(f"gfr app: {exc}")

    reuse_freed_memory()  # before Gradio's worker threads exist, so that they share the reused heap
    # SIGTERM (a Space stopping, `kill`) exits like Ctrl-C does: the exit handlers remove the results folder
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    demo = build_demo()
    if gpu.zero_gpu():  # models load on the CPU at start-up; each request moves them to its GPU
        logic.preload([logic.default_model()[0]])
    demo.queue(default_concurrency_limit=2, max_size=32).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port,
        max_file_size=upload_limit,
        show_error=True,
        css=ui.CSS,
    )


if __name__ == "__main__":
    main()
