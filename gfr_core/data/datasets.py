"""Face datasets: read photos from tar files or folders, re-align every face to the project's template,
cache the aligned set, and serve it to training and evaluation.

The shared face collections are 128 px photos framed differently (LFW: face plus hair; UTKFace: tight
crops). Each photo is run through the same detector and FFHQ-template alignment as the restoration
pipeline, so training data and inference crops look alike. Photos without a detected face are skipped.
Photos whose aligned crop would reach far outside the photo are skipped (see ``min_inside``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tarfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..face import detect_faces, estimate_similarity, template
from ..io.files import not_regular
from ..io.image import IMAGE_SUFFIXES
from ..io.tensor import from_uint8

__all__ = ["AlignedFaces", "aligned_faces", "cache_dir", "iter_images", "load_prealigned", "split_sources"]

log = logging.getLogger(__name__)

_CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where aligned sets are cached (``GFR_CACHE`` or ``~/.cache/gfr``)."""
    return Path(os.environ.get("GFR_CACHE", Path.home() / ".cache" / "gfr"))


def _decode(data: bytes | Path) -> np.ndarray:
    """RGB uint8 pixels of an image file's bytes or path; ``ValueError`` saying why it cannot be read."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
                return np.asarray(im.convert("RGB"))
        except UnidentifiedImageError:
            raise ValueError("not an image PIL can read") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None


def iter_images(source: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (name, RGB uint8 image) from a ``.tar`` file or a folder (recursively), in sorted order.

    Files that cannot be decoded (not images, truncated, corrupt) are skipped, counted, and named in one
    warning at the end; special files (FIFOs, sockets) are never opened.
    """
    source = Path(source)
    why = not_regular(source)
    if why is not None and not source.is_dir():
        raise FileNotFoundError(f"{source}: {why}; expected a .tar of images or a folder")
    skipped: list[str] = []

    def decoded(name: str, data: bytes | Path) -> np.ndarray | None:
        try:
            return _decode(data)
        except ValueError as exc:
            skipped.append(f"{name} ({exc})")
            return None

    if source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source) as tar:
            members = sorted(
                (m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES)),
                key=lambda m: m.name,
            )
            for m in members:
                img = decoded(m.name, tar.extractfile(m).read())  # type: ignore[union-attr]
                if img is not None:
                    yield m.name, img
    elif source.is_dir():
        for f in sorted(source.rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES and not_regular(f) is None:
                img = decoded(str(f.relative_to(source)), f)
                if img is not None:
                    yield str(f.relative_to(source)), img
    else:
        raise FileNotFoundError(f"{source}: expected a .tar of images or a folder")
    if skipped:
        log.warning("%s: skipped %d file(s) that are not readable images (first: %s)", source, len(skipped), skipped[0])


def split_sources(data: str | Path, split: str) -> list[Path]:
    """Sources of one split: a tar file as is; in a folder its ``*-{split}.tar`` files, or else the folder
    itself when it holds images."""
    data = Path(data)
    if data.is_file():
        return [data]
    found = sorted(data.glob(f"*-{split}.tar"))
    if found:
        return found
    if data.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in data.rglob("*")):
        return [data]
    raise FileNotFoundError(f"{data}: no *-{split}.tar files and no images; pass a tar file or an image folder")


def _align_inside(
    image: np.ndarray, landmarks: np.ndarray, size: int, zoom: float, min_inside: float
) -> np.ndarray | None:
    """Aligned crop, or None when less than ``min_inside`` of it comes from inside the photo.

    Tightly framed photos (UTKFace) would otherwise fill the crop with mirrored or smeared borders, which a
    generative prior learns as if they were faces. The remaining border is filled by edge replication.
    """
    m = estimate_similarity(landmarks, template(size, zoom))
    ones = np.ones(image.shape[:2], np.uint8)
    inside = cv2.warpAffine(ones, m, (size, size), flags=cv2.INTER_NEAREST, borderValue=0).mean()
    if inside < min_inside:
        return None
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _fingerprint(sources: Sequence[Path], size: int, limit: int | None, max_faces: int | None = None) -> str:
    h = hashlib.sha256()
    for s in sources:
        st = s.stat()
        h.update(f"{s.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    h.update(f"{size}|{limit}|{_CACHE_VERSION}".encode())
    if max_faces is not None:
        h.update(f"|faces={max_faces}".encode())
    return h.hexdigest()[:16]


def aligned_faces(
    sources: Sequence[str | Path],
    *,
    size: int = 128,
    zoom: float = 1.0,
    limit: int | None = None,
    min_inside: float = 0.9,
    progress: bool = True,
    max_faces: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Detect and align the largest face of every photo, cached on disk.

    Args:
        sources: Tar files and/or folders.
        size: Aligned crop size.
        zoom: Template zoom (see :func:`gfr_core.face.template`).
        limit: Use at most this many photos per source (for quick runs and tests).
        min_inside: Skip photos whose aligned crop would be less than this fraction real pixels.
        progress: Show a progress bar while aligning.
        max_faces: Stop once this many faces are aligned, over all sources (``gfr eval --limit``).

    Returns:
        ((N,size,size,3) uint8 RGB, names of the N photos).
    """
    paths = [Path(s) for s in sources]
    key = _fingerprint(paths, size, limit, max_faces) + f"-{min_inside:g}-{zoom:g}"
    cdir = cache_dir()
    npy, meta = cdir / f"aligned-{key}.npy", cdir / f"aligned-{key}.json"
    if npy.is_file() and meta.is_file():
        try:
            return np.load(npy, allow_pickle=False), json.loads(meta.read_text())["names"]
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            log.warning("%s: the cached aligned faces are damaged (%s); rebuilding them", npy, type(exc).__name__)
    from tqdm import tqdm

    crops, names, skipped = [], [], 0
    for src in paths:
        if max_faces is not None and len(crops) >= max_faces:
            break
        it = iter_images(src)
        for i, (name, img) in enumerate(tqdm(it, desc=f"aligning {src.name}", disable=not progress, unit="img")):
            if (limit is not None and i >= limit) or (max_faces is not None and len(crops) >= max_faces):
                break
            # unscreened, as the embedded models' training and evaluation sets were built (their cached sets)
            dets = detect_faces(img, min_face_size=24, score_threshold=0.95, screen=False)
            if not dets:
                skipped += 1
                continue
            crop = _align_inside(img, dets[0].landmarks, size, zoom, min_inside)
            if crop is None:
                skipped += 1
                continue
            crops.append(crop)
            names.append(f"{src.name}/{name}")
    log.info("aligned %d faces, skipped %d photos (no face, or crop mostly outside the photo)", len(crops), skipped)
    arr = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    cdir.mkdir(parents=True, exist_ok=True)
    tmp = npy.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, npy)
    meta.write_text(json.dumps({"names": names, "skipped": skipped, "sources": [str(p) for p in paths], "size": size}))
    return arr, names


def load_prealigned(sources: Sequence[str | Path], *, size: int = 128, limit: int | None = None) -> np.ndarray:
    """Photos that are already aligned face crops (no detection), resized to ``size``."""
    out = []
    for src in sources:
        for i, (_, img) in enumerate(iter_images(src)):
            if limit is not None and i >= limit:
                break
            interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
            out.append(img if img.shape[:2] == (size, size) else cv2.resize(img, (size, size), interpolation=interp))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


class AlignedFaces(torch.utils.data.Dataset):
    """Aligned uint8 faces served as (3,S,S) float tensors in [-1,1], resized to ``resolution``."""

    def __init__(self, faces: np.ndarray, *, resolution: int, hflip: bool = True, seed: int | None = None) -> None:
        """Args:
        faces: (N,H,W,3) uint8 RGB aligned faces.
        resolution: Side of the served faces.
        hflip: Mirror half of the faces at random.
        seed: Decide each mirroring from (seed, epoch, index) rather than torch's global generator, so the
            same face is mirrored alike whichever process loads it (data-parallel training).
        """
        if faces.shape[1] != resolution:
            faces = np.stack([cv2.resize(f, (resolution, resolution), interpolation=cv2.INTER_AREA) for f in faces])
        self.faces = np.ascontiguousarray(faces)
        self.hflip, self.seed, self.epoch = hflip, seed, 0

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = from_uint8(self.faces[i])[0]
        if self.hflip:
            coin = torch.rand(()) if self.seed is None else np.random.default_rng((self.seed, self.epoch, i)).random()
            if coin < 0.5:
                x = x.flip(2)
        return x
