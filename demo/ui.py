"""Layout of the gfr web app."""

from __future__ import annotations

import gradio as gr

from gfr_core import get_card, list_models

__all__ = ["build_demo", "models_markdown"]


def models_markdown() -> str:
    """Model cards as a Markdown table (name, task, architecture, license, paper)."""
    lines = ["| model | task | architecture | license | paper |", "|---|---|---|---|---|"]
    for name in list_models():
        c = get_card(name)
        where = "bundled, offline" if c.embedded else f"Hub: `{c.source_repo}/{c.filename}`"
        lines.append(f"| **{name}** ({where}) | {c.task} | {c.arch} | {c.license} | {c.paper} |")
    return "\n".join(lines)


def build_demo() -> gr.Blocks:
    """Build the Blocks app. Models are loaded lazily by the callbacks, never here."""
    with gr.Blocks(title="gfr: GAN-prior face restoration") as demo:
        gr.Markdown("# gfr: GAN-prior face restoration\nStyleGAN2, GFPGAN and GPEN in plain PyTorch.")
        with gr.Tab("Models"):
            gr.Markdown(models_markdown())
    return demo
