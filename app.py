"""gfr web app: ``python app.py`` (also the entry point of the Hugging Face Space).

Thin by design: the layout lives in ``demo/``; models load lazily on first use.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def main() -> None:
    from demo import build_demo
    from gfr_core.restore import reuse_freed_memory

    reuse_freed_memory()  # before Gradio's worker threads exist, so that they share the reused heap

    demo = build_demo()
    demo.queue(default_concurrency_limit=2, max_size=32).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=os.environ.get("GFR_MAX_UPLOAD", "25mb"),
        show_error=True,
    )


if __name__ == "__main__":
    main()
