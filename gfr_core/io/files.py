"""Files as gfr handles them, whatever they hold: inputs that are regular files (never a FIFO that would
block ``open()``), outputs written to a hidden temporary file and then published under their name without
ever replacing a file, and the sweep of what a killed run left half-written."""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import tempfile
from pathlib import Path

__all__ = [
    "NAME_MAX",
    "TEMP_PREFIX",
    "fit_name",
    "not_regular",
    "open_temp",
    "publish",
    "remove_stale_temp_files",
]

log = logging.getLogger(__name__)

NAME_MAX = 255
"""Longest file name (bytes, UTF-8) that the common file systems (ext4, XFS, APFS, NTFS) accept."""


def not_regular(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as an input file (missing, a folder, a FIFO, socket or device), or None
    for a regular file. Decided by ``stat`` alone: nothing is opened, so a FIFO never blocks."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except PermissionError:
        return "permission denied; make the file readable (chmod +r)"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"not a regular file ({kind}); give a file"
    return None


def fit_name(stem: str, tail: str, *, reserve: int = 0) -> str:
    """``stem + tail`` (``"photo" + "_00_input.png"``), or when that is longer than :data:`NAME_MAX` bytes
    (less ``reserve``), ``stem`` cut short and marked with a hash of it, so that two long names stay
    different; ``tail`` is always kept whole."""
    import hashlib

    limit = NAME_MAX - reserve
    if len((stem + tail).encode()) <= limit:
        return stem + tail
    mark = f"~{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
    room = max(0, limit - len((mark + tail).encode()))
    return stem.encode()[:room].decode(errors="ignore") + mark + tail


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


TEMP_PREFIX = ".gfr-tmp-"
"""Temporary files of :func:`write_image` are ``.gfr-tmp-<pid>-<8 random chars>.part<suffix>``, beside their target."""

_TEMP_NAME = re.compile(r"^\.gfr-tmp-(\d+)-[a-z0-9_]{8}\.part\.[a-z0-9]{2,5}$")


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete the temporary files that a killed :func:`write_image` left in ``folder`` (not below it): only
    names of gfr's exact temporary pattern (:data:`TEMP_PREFIX`) whose writing process is gone. Returns
    how many were removed."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    removed = 0
    for f in root.iterdir():
        m = _TEMP_NAME.match(f.name)
        if m is None or not f.is_file() or f.is_symlink():
            continue
        pid = int(m.group(1))
        if pid != os.getpid() and not _alive(pid):
            f.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d temporary file(s) left in %s by an interrupted run", removed, root)
    return removed


def open_temp(path: Path) -> tuple[int, str]:
    """(file descriptor, name) of a new hidden temporary file beside ``path`` (:data:`TEMP_PREFIX`), to be
    written, then given its name with :func:`publish` (or removed)."""
    return tempfile.mkstemp(
        prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".part" + path.suffix.lower(), dir=path.parent
    )


def publish(tmp: str, path: Path, *, overwrite: bool = False) -> None:
    """Give the finished temporary file ``tmp`` (from :func:`open_temp`) the name ``path``, readable as the
    umask allows: replacing ``path`` with ``overwrite``, else never (:func:`_publish`)."""
    os.chmod(tmp, 0o666 & ~_umask())
    if overwrite:
        os.replace(tmp, path)
    else:
        _publish(tmp, path)


def _publish(tmp: str, path: Path) -> None:
    """Give the finished temporary file ``tmp`` the name ``path``, failing if ``path`` exists by then (an
    exclusive hard link: another process writing the same name at the same time cannot be overwritten)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; refusing to overwrite it (choose another output folder)") from None
    except OSError as exc:  # a file system without hard links: reserve the name exclusively, then replace it
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise FileExistsError(f"{path} exists; refusing to overwrite it (choose another output folder)") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)
