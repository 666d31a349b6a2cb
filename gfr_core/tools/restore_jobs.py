"""What one input of ``gfr restore`` goes through, whichever engine runs it (the local loop of
:mod:`.restore_cli`, or a Ray actor of :mod:`gfr_core.cluster`): a planned :class:`Job`, restored and
written, or one line that says why not."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Job", "UserError", "job_error", "restore_clip_job", "restore_photo_job"]

log = logging.getLogger(__name__)


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit code 2."""


def _os_error(src: Path, exc: OSError) -> str:
    """One line for a file that could not be written, with what to do."""
    import errno

    what = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    advice = {
        errno.ENAMETOOLONG: "shorten the input's file name or the -o path",
        errno.ENOSPC: "free some disk space; the outputs written so far are complete",
        errno.EDQUOT: "free some space within your quota; the outputs written so far are complete",
        errno.EACCES: "choose an output folder you can write to",
        errno.EROFS: "choose an output folder on a writable disk",
    }.get(exc.errno, "nothing was left half-written")
    return f"{src}: cannot write the result ({what}); {advice}"


_INPUT = Path("<input>")  # owner of the input files' own names in _unique


def _unique(dst: Path, src: Path, planned: dict[Path, Path]) -> Path:
    """``dst``, or, when it is an input or another input of this run already maps to it (``x.jpg`` and
    ``x.jpeg``), the same name with the input's own suffix added (``x-jpeg.jpg``), then a counter."""
    key = dst.resolve()
    if planned.get(key, src) != src:
        tag = src.suffix.lstrip(".").lower() or "file"
        n, cand = 1, dst.with_name(f"{dst.stem}-{tag}{dst.suffix}")
        while planned.get(cand.resolve(), src) != src:
            n += 1
            cand = dst.with_name(f"{dst.stem}-{tag}{n}{dst.suffix}")
        owner = planned[key]
        why = "is an input file" if owner == _INPUT else f"is already the output of {owner}"
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
    )
    if sweep is not None:
        sweep(dst.parent)
    write_image(dst, res.image, overwrite=args.overwrite, exif=img.exif, icc_profile=img.icc_profile)
    if args.save_faces:
        outdir = Path(args.output)
        stem = outdir / "faces" / dst.relative_to(outdir).with_suffix("")
        for i, face in enumerate(res.faces):
            for kind, pixels in (("input", face.aligned), ("restored", face.restored)):
                path = _unique(stem.parent / f"{stem.name}_{i:02d}_{kind}.png", src, owner)  # never an input
                if sweep is not None:
                    sweep(path.parent)
                write_image(path, pixels, overwrite=args.overwrite)
    note = "; ".join(res.messages)
    return f"{src}: {len(res.faces)} face(s) -> {dst}" + (f" ({note})" if note else "")


def job_error(job: Job, exc: BaseException) -> str | None:
    """The one line for an input that failed for a reason of its own (the run goes on), or None."""
    from ..io.image import ImageInputError

    if isinstance(exc, (ImageInputError, UserError, FileExistsError, ValueError)):  # VideoInputError too
        return f"gfr: error: {exc}"
    if isinstance(exc, OSError):  # a name too long, a full disk: this file fails, the next one is tried
        return f"gfr: error: {_os_error(job.src, exc)}"
    return None


def _restore_clip(restorer, job: Job, args: argparse.Namespace) -> int:
    """One clip, with a progress bar; 1 when it failed."""
    from tqdm import tqdm

    bar = tqdm(desc=str(job.rel), unit="frame", disable=args.quiet, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total or None
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
        bar.close()
    if not args.quiet:
        tqdm.write(line, file=sys.stderr)
    return 0
