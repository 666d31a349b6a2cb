"""``gfr restore``: photos and folders in, restored photos out, never losing a file.

Every output name is planned from the inputs' headers before any model is loaded: an output that exists
stops the run at once (or is skipped with ``--skip-existing``), and a photo refused for its size is never
decoded. The pipeline itself is :class:`gfr_core.restore.FaceRestorer`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..hub.registry import BEST_MODEL, DEFAULT_MODEL
from ..io.image import IMAGE_SUFFIXES
from ..jobs import INPUT, Job, UserError, job_error, load_restorer, restore_clip_job, restore_photo_job, unique_output
from ..video.io import VIDEO_SUFFIXES
from .options import number, whole

MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES

__all__ = ["UserError", "add_restore_parser", "collect_inputs", "default_output", "load_restorer"]

log = logging.getLogger(__name__)


def _positive_megapixels(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"give a positive number of megapixels (e.g. 100), got {text!r}")
    return value


def _check_output_folder(outdir: Path) -> None:
    """Refuse, before any work, an output folder that cannot be written (created here if missing)."""
    import os
    import tempfile

    parent = next((q for q in [outdir, *outdir.absolute().parents] if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"-o {outdir}: {parent} is a file, not a folder; give a folder for the outputs")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".gfr-probe-", dir=outdir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"-o {outdir} cannot be written ({exc.strerror or exc}); choose a folder you can write to"
        ) from None


_EXT_BY_FORMAT = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


def collect_inputs(paths: list[str], *, exclude: Path | None = None) -> list[tuple[Path, Path]]:
    """(file, path relative to its input root) for every image file named or found under a folder, each file
    once. Found in a folder (not named), gfr's own outputs are skipped: files under ``exclude`` (the output
    folder) and files carrying gfr's EXIF tag (:func:`gfr_core.io.image.is_gfr_output`)."""
    from ..io.files import not_regular
    from ..io.image import is_gfr_output

    found: list[tuple[Path, Path]] = []
    seen: set[Path] = set()
    skip = exclude.resolve() if exclude is not None else None
    skipped = 0

    def add(f: Path, rel: Path, below: Path | None = None) -> None:
        """``below``: the folder ``f`` was found in (None: named on the command line)."""
        nonlocal skipped
        key = f.resolve()
        if key in seen:
            return
        seen.add(key)
        # -o inside the scanned folder: what lies under it is output (-o the folder itself: the tag decides)
        in_output = skip is not None and below is not None and skip != below and key.is_relative_to(skip)
        if below is not None and (in_output or is_gfr_output(f)):
            skipped += 1
            return
        found.append((f, rel))

    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES and not f.name.startswith("."):
                    add(f, f.relative_to(p), p.resolve())
        elif p.exists():
            why = not_regular(p)  # before anything opens it: a FIFO would block open() for ever
            if why is not None:
                raise UserError(f"{p}: {why.replace('give a file', 'give a photo, a clip or a folder')}")
            add(p, Path(p.name))
        else:
            raise UserError(f"{p}: no such file or folder")
    if skipped:
        log.warning("skipped %d file(s) that gfr wrote itself (name a file to restore it again)", skipped)
    if not found:
        raise UserError(f"no images or clips found in {' '.join(paths)} (looked for {', '.join(MEDIA_SUFFIXES)})")
    return found


def default_output(inputs: list[str]) -> Path:
    """Where outputs go without ``-o``: ``<first input>-restored`` beside it (``photos/`` ->
    ``photos-restored/``, ``a.jpg`` -> ``a-restored/``)."""
    first = Path(inputs[0])
    return first.with_name((first.name if first.is_dir() else first.stem) + "-restored")


def _plan(inputs: list[tuple[Path, Path]], outdir: Path, ext_choice: str) -> list[Job]:
    """Every output name, from the inputs' headers, before any work (no photo is decoded here)."""
    from ..io.image import peek_image

    owner: dict[Path, Path] = dict.fromkeys((f.resolve() for f, _ in inputs), INPUT)  # inputs are never written
    wanted = []  # (src, rel, ext, size): what each input would be written as
    for src, rel in inputs:
        if src.suffix.lower() in VIDEO_SUFFIXES:  # a clip: MP4 (H.264, its sound copied)
            wanted.append((src, rel, ".mp4", None))
            continue
        head = peek_image(src)
        ext = ext_choice if ext_choice != "auto" else _EXT_BY_FORMAT.get(head.format if head else "", ".png")
        if ext == ".jpg" and head is not None and head.alpha:
            ext = ".png"  # keep the alpha channel
        wanted.append((src, rel, ext, (head.width, head.height) if head else None))
    # an input that already has its output's extension gets its own name first (clip.mp4 keeps clip.mp4
    # when clip.mov is beside it: the .mov becomes clip-mov.mp4); outputs keep the inputs' order
    own_first = sorted(range(len(wanted)), key=lambda i: wanted[i][0].suffix.lower() != wanted[i][2])
    dst = {i: unique_output((outdir / wanted[i][1]).with_suffix(wanted[i][2]), wanted[i][0], owner) for i in own_first}
    return [Job(src, rel, dst[i], ext, size) for i, (src, rel, ext, size) in enumerate(wanted)]


def _cmd_restore(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..io.image import max_pixels, remove_stale_temp_files

    max_pixels()  # a bad GFR_MAX_PIXELS is one line now, not one per file
    if not 0 <= args.fidelity <= 1:
        raise UserError(f"--fidelity must be in [0, 1], got {args.fidelity}")
    if not 1 <= args.upscale <= 8:
        raise UserError(f"--upscale must be between 1 and 8, got {args.upscale}")
    if args.output is None:
        args.output = str(default_output(args.inputs))
        print(f"gfr: writing to {args.output}/ (-o to choose another folder)", file=sys.stderr)
    outdir = Path(args.output)
    inputs = collect_inputs(args.inputs, exclude=outdir)  # never gfr's own earlier outputs
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"-o {outdir} is a file, not a folder; give a folder for the outputs")
    _check_output_folder(outdir)
    jobs = _plan(inputs, outdir, args.ext)
    done = [j for j in jobs if j.dst.exists()]
    if done and not args.overwrite:  # before the model loads: a rerun must not restore everything to fail
        if not args.skip_existing:  # whichever engine: one plan, one decision
            raise UserError(
                f"{len(done)} of {len(jobs)} output(s) already exist in {outdir} (first: {done[0].dst}); add "
                "--skip-existing to restore only the missing ones, or --overwrite to replace them"
            )
        print(f"gfr: {len(done)} of {len(jobs)} already restored, skipped (--skip-existing)", file=sys.stderr)
        finished = {j.dst for j in done}
        jobs = [j for j in jobs if j.dst not in finished]
        if not jobs:
            return 0
    if args.engine == "ray":
        if args.save_faces:
            raise UserError("--save-faces is not available with --engine ray; run it without --engine")
        from ..cluster import restore_on_ray

        return restore_on_ray(jobs, args)
    swept: set[Path] = set()

    def sweep(folder: Path) -> None:  # what a killed earlier run left half-written in a folder written to now
        if folder not in swept:
            swept.add(folder)
            remove_stale_temp_files(folder)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    restorer = load_restorer(args)
    want_up = "realesrgan" in (args.bg_upsampler, args.face_upsampler)
    failures = 0
    # face crops' names join the plan: never an input, never another output of this run
    owner = dict.fromkeys((f.resolve() for f, _ in inputs), INPUT) | {j.dst.resolve(): j.src for j in jobs}
    bar = tqdm(jobs, unit="file", disable=len(jobs) < 2 or args.quiet, file=sys.stderr)
    for job in bar:
        if job.ext == ".mp4":
            sweep(job.dst.parent)
            failures += _restore_clip(restorer, job, args)
            continue
        tiles = tqdm(
            desc=f"{job.rel} upsampler", unit="tile", leave=False, disable=args.quiet or not want_up, file=sys.stderr
        )

        def progress(done: int, total: int, tiles=tiles) -> None:
            tiles.total = total
            tiles.n = done
            tiles.refresh()

        try:
            line = restore_photo_job(restorer, job, args, progress, sweep, owner)
            if not args.quiet:
                tqdm.write(line, file=sys.stderr)
        except Exception as exc:
            message = job_error(job, exc)
            if message is None:
                raise
            failures += 1
            tqdm.write(message, file=sys.stderr)
        finally:
            tiles.close()
    if failures:
        print(f"gfr: {failures} of {len(jobs)} file(s) failed", file=sys.stderr)
        return 1
    return 0


def _restore_clip(restorer, job: Job, args: argparse.Namespace) -> int:
    """One clip, with a progress bar; 1 when it failed."""
    from tqdm import tqdm

    bar = None  # made at the first frame, with the clip's frame count (never an empty "0frame" bar)

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                desc=str(job.rel), total=total or None, unit="frame", leave=False, disable=args.quiet, file=sys.stderr
            )
        bar.n = done
        bar.refresh()

    try:
        line = restore_clip_job(restorer, job, args, progress)
    except Exception as exc:
        message = job_error(job, exc)
        if message is None:
            raise
        tqdm.write(message, file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        tqdm.write(line, file=sys.stderr)
    return 0


def add_restore_parser(sub: argparse._SubParsersAction) -> None:
    """The ``restore`` subcommand's options."""
    p = sub.add_parser("restore", help="restore every face in photos and clips (files and folders)")
    p.add_argument("inputs", nargs="+", help="image files, video clips (.mp4, .mov, .mkv, ...) or folders")
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="output folder (default: <first input>-restored beside it); inputs are never written",
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"model name or checkpoint path (default: {BEST_MODEL} when cached or reachable, else {DEFAULT_MODEL})",
    )
    p.add_argument("--upscale", type=float, default=2, help="output size / input size, 1-8 (default 2)")
    p.add_argument(
        "--fidelity",
        type=float,
        default=0.0,
        help="0 = full restoration (default), 1 = the input upscaled, no face changed; linear in between",
    )
    p.add_argument(
        "--w",
        type=number(0, 1),
        default=None,
        help="CodeFormer's own fidelity weight: 0 the codebook's face, 1 closest to the input (default 0.5); "
        "--fidelity keeps its meaning beside it",
    )
    p.add_argument("--only-center-face", action="store_true", help="restore only the most central face")
    p.add_argument("--aligned", action="store_true", help="inputs are aligned face crops (skip detection)")
    p.add_argument("--save-faces", action="store_true", help="also write each aligned input and restored crop")
    p.add_argument(
        "--ext",
        type=lambda v: v if v == "auto" else "." + v.lower().lstrip("."),
        choices=["auto", ".png", ".jpg"],
        metavar="{auto,png,jpg}",
        default="auto",
        help="output format (auto: as the input)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (never inputs)")
    p.add_argument(
        "--temporal",
        choices=["on", "off"],
        default="on",
        help="clips: track faces and smooth their landmarks over time (on), or restore each frame alone (off)",
    )
    p.add_argument(
        "--chroma",
        choices=["444", "420"],
        default="444",
        help="clips: colour at full resolution (444, default: no face loses to colour subsampling) or halved "
        "(420: for phones and QuickTime)",
    )
    p.add_argument(
        "--skip-existing", action="store_true", help="restore only the inputs whose output is missing (resume a folder)"
    )
    p.add_argument(
        "--max-output-megapixels",
        type=_positive_megapixels,
        default=100.0,
        help="refuse, before any work, a photo whose output would be larger (default 100)",
    )
    p.add_argument(
        "--detector",
        choices=["mtcnn", "retinaface"],
        default="mtcnn",
        help="face detector: mtcnn (offline) or retinaface (RetinaFace-R50 from the Hub, as GFPGAN)",
    )
    p.add_argument(
        "--bg-upsampler",
        choices=["none", "realesrgan"],
        default="none",
        help="upscale the background with Real-ESRGAN x4plus, tiled (default none: bicubic; ~5 min per input MP on 2 CPU cores)",
    )
    p.add_argument(
        "--face-upsampler",
        choices=["none", "realesrgan"],
        default="none",
        help="take face detail above the restorer's resolution from Real-ESRGAN (default none: from the bicubic upscale)",
    )
    p.add_argument(
        "--face-parser",
        choices=["auto", "none", "parsenet"],
        default="auto",
        help="blend mask from face parsing (auto: ParseNet when its file is cached; none: the template mask)",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="run the restorer with PyTorch or ONNX Runtime (exported once per checkpoint and cached)",
    )
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model: ~1.1x faster per 512 px face on CPU after 4-5 min of compilation (many photos)",
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="ray: restore on a Ray cluster, a pool of actors that each load the model once "
        "(pip install -e '.[cluster]'); with --skip-existing a killed run resumes, as with the local engine",
    )
    p.add_argument("--address", default=None, help="--engine ray: the cluster to join (default: a local Ray)")
    p.add_argument(
        "--threads",
        type=whole(0, 1024),
        default=0,
        help="torch CPU threads per process, or per Ray actor (default: this machine's cores)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_restore)
