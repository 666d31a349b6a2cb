"""Gradio front end of gfr: layout and callbacks. ``app.py`` only launches what :func:`build_demo` returns."""

from .ui import build_demo

__all__ = ["build_demo"]
