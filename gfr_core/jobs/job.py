"""What one input of ``gfr restore`` goes through, whichever engine runs it (the local loop of
:mod:`gfr_core.tools.restore_cli`, or a Ray actor of :mod:`gfr_core.cluster`): the restorer the options ask
for, a planned :class:`Job` restored and written, or one line that says why not. Below both engines, so
that neither imports the other."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INPUT",
    "Job",
    "UserError",
    "job_error",
    "load_restorer",
    "restore_clip_job",
    "restore_photo_job",
    "unique_output",
]

log = logging.getLogger(__name__)


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit code 2."""


def _os_error(src: Path, exc: OSError) -> str:
    """One line for a file that could not be written, with what to do."""
    import errno

    # the name the user would look for: a link's target (filename2), not gfr's hidden temporary file
    target = exc.filename2 or exc.filename
    what = f"{exc.strerror or exc}" + (f": {target}" if target else "")
    advice = {
        errno.ENAMETOOLONG: "shorten the input's file name or the -o path",
        errno.ENOSPC: "free some disk space; the outputs written so far are complete",
        errno.EDQUOT: "free some space within your quota; the outputs written so far are complete",
        errno.EACCES: "choose an output folder you can write to",
        errno.EROFS: "choose an output folder on a writable disk",
    }.get(exc.errno, "nothing was left half-written")
    return f"{src}: cannot write the result ({what}); {advice}"


INPUT = Path("<input>")
"""The owner of the input files' own names in :func:`unique_output`: no output may take them."""


def unique_output(dst: Path, src: Path, planned: dict[Path, Path]) -> Path:
    """``dst``, or, when it is an input or another input of this run already maps to it (``x.jpg`` and
    ``x.jpeg``), the same name with the input's own suffix added (``x-jpeg.jpg``), then a counter. A name
    longer than the file system allows is shortened (:func:`gfr_core.io.files.fit_name`)."""
    from ..io.files import fit_name

    dst = dst.with_name(fit_name(dst.stem, dst.suffix))
    key = dst.resolve()
    if planned.get(key, src) != src:
        tag = src.suffix.lstrip(".").lower() or "file"
        n, cand = 1, dst.with_name(fit_name(dst.stem, f"-{tag}{dst.suffix}"))
        while planned.get(cand.resolve(), src) != src:
            n += 1
            cand = dst.with_name(fit_name(dst.stem, f"-{tag}{n}{dst.suffix}"))
        owner = planned[key]
        why = "is an input file" if owner == INPUT else f"is already the output of {owner}"
        log.warning("%s: %s %s; writing %s instead", src, dst, why, cand)
        dst, key = cand, cand.resolve()
    planned[key] = src
    return dst


@dataclass(frozen=True)
class Job:
    """One input and the output it is going to."""

    src: Path
    rel: Path  # its path below its input root
    dst: Path
    ext: str
    size: tuple[int, int] | None  # (width, height) from the header; None when it cannot be read


def load_restorer(args: argparse.Namespace):
    """The :class:`~gfr_core.restore.FaceRestorer` the options ask for. Without ``--model``, the best
    available one (said on stderr), or the offline model when that cannot be had; ``args.model`` is set to
    the model loaded, so that other processes (``--engine ray``) load the same."""
    from ..hub import DEFAULT_MODEL, ChecksumError, ModelUnavailableError, default_restorer, model_card
    from ..restore import FaceRestorer, InferenceSettings

    settings = InferenceSettings.for_device(args.device, compile=True) if args.compile else None
    chosen = args.model is None
    if chosen:
        args.model, why = default_restorer()
        print(f"gfr: {why}", file=sys.stderr)

    def load(name: str) -> FaceRestorer:
        return FaceRestorer.from_pretrained(
            name,
            device=args.device,
            detector=args.detector,
            settings=settings,
            upsampler="realesrgan" if "realesrgan" in (args.bg_upsampler, args.face_upsampler) else None,
            parser=None if args.face_parser == "none" else args.face_parser,
            backend=args.backend,
        )

    try:
        restorer = load(args.model)
    except (ModelUnavailableError, ChecksumError) as exc:
        if not chosen or args.model == DEFAULT_MODEL:
            raise
        # the default was a guess from a probe: say why it failed, then use the offline model
        print(
            f"gfr: could not get {args.model} ({exc}); using the embedded 64 px model '{DEFAULT_MODEL}'",
            file=sys.stderr,
        )
        args.model = DEFAULT_MODEL
        return load(DEFAULT_MODEL)
    card = model_card(args.model)
    if card is not None and not card.embedded and "non-commercial" in card.license.lower() and not args.quiet:
        print(f"gfr: {args.model} is for non-commercial use only ({card.license})", file=sys.stderr)  # once a run
    return restorer


def restore_clip_job(restorer, job: Job, args: argparse.Namespace, progress=None) -> str:
    """One clip through :func:`gfr_core.video.restore_video`; the line that says what was written.

    Raises what :func:`job_error` turns into one line.
    """
    from ..video import restore_video

    res = restore_video(
        restorer,
        job.src,
        job.dst,
        upscale=args.upscale,
        fidelity=args.fidelity,
        temporal=args.temporal == "on",
        overwrite=args.overwrite,
        chroma=args.chroma,
        w=args.w,
        progress=progress,
    )
    line = f"{job.src}: {res.frames} frame(s), {res.faces} face crop(s) -> {res.path} ({res.size[0]}x{res.size[1]})"
    return "\n".join([line, *(f"  note: {note}" for note in res.notes)])


def restore_photo_job(restorer, job: Job, args: argparse.Namespace, progress=None, sweep=None, owner=None) -> str:
    """One photo through the restorer, written as planned; the line that says what was written.

    ``sweep(folder)`` removes what a killed earlier run left half-written in a folder about to be written;
    ``owner`` (output path -> its input) keeps ``--save-faces`` crops off every input and planned output.
    Raises what :func:`job_error` turns into one line.
    """
    from ..io.image import check_output_size, read_image, write_image

    src, dst = job.src, job.dst
    max_output = int(args.max_output_megapixels * 1e6)
    if job.size is not None:  # from the header, before decoding: a refused photo is never decoded
        check_output_size(*job.size, args.upscale, max_pixels=max_output, suffix=job.ext, name=str(src))
    img = read_image(src)
    check_output_size(
        img.rgb.shape[1], img.rgb.shape[0], args.upscale, max_pixels=max_output, suffix=job.ext, name=str(src)
    )
    res = restorer(
        img,
        upscale=args.upscale,
        fidelity=args.fidelity,
        only_center_face=args.only_center_face,
        aligned=args.aligned,
        background="upsampler" if args.bg_upsampler == "realesrgan" else "bicubic",
        face_detail=args.face_upsampler == "realesrgan",
        progress=progress,
        w=args.w,
    )
    if sweep is not None:
        sweep(dst.parent)
    write_image(dst, res.image, overwrite=args.overwrite, exif=img.exif, icc_profile=img.icc_profile)
    if args.save_faces:
        try:
            _save_faces(res.faces, src, dst, args, sweep, owner)
        except OSError as exc:  # the photo is written: say so, and what is missing
            raise UserError(
                f"{src}: restored to {dst}, but its face crops were not all written ({exc.strerror or exc}); "
                "the photo is complete"
            ) from None
    note = "; ".join(res.messages)
    return f"{src}: {len(res.faces)} face(s) -> {dst}" + (f" ({note})" if note else "")


def _save_faces(faces, src: Path, dst: Path, args: argparse.Namespace, sweep=None, owner=None) -> None:
    """``--save-faces``: each face's aligned input and restored crop under ``<output>/faces/``, named after the
    photo (shortened, with a hash, where the name would be too long for the file system)."""
    from ..io.files import fit_name
    from ..io.image import write_image

    outdir = Path(args.output)
    stem = outdir / "faces" / dst.relative_to(outdir).with_suffix("")
    for i, face in enumerate(faces):
        for kind, pixels in (("input", face.aligned), ("restored", face.restored)):
            name = fit_name(stem.name, f"_{i:02d}_{kind}.png", reserve=8)  # room for unique_output's "-png2" tag
            path = unique_output(stem.parent / name, src, owner)  # never an input
            if sweep is not None:
                sweep(path.parent)
            write_image(path, pixels, overwrite=args.overwrite)


def job_error(job: Job, exc: BaseException) -> str | None:
    """The one line for an input that failed for a reason of its own (the run goes on), or None."""
    from ..io.image import ImageInputError

    if isinstance(exc, (ImageInputError, UserError, FileExistsError, ValueError)):  # VideoInputError too
        return f"gfr: error: {exc}"
    if isinstance(exc, OSError):  # a name too long, a full disk: this file fails, the next one is tried
        return f"gfr: error: {_os_error(job.src, exc)}"
    return None
