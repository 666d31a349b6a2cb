"""Model registry and loading. The only module of ``gfr_core`` that touches the network, and only when called.

Each released checkpoint has one frozen :class:`ModelCard`. Loading goes::

    hf_hub_download (pinned revision) -> sha256 check -> safetensors / torch.load(weights_only=True)
        -> converter (raises on any unmatched key) -> load_state_dict(strict=True) -> eval()

Environment:

* ``HF_ENDPOINT``: another Hub endpoint (a mirror, or a loopback server in tests).
* ``GFR_HUB_MIRROR``: a repo id that replaces every card's ``repo_id`` (same filenames), for a
  self-hosted copy of the weights.
* ``HF_HUB_OFFLINE=1``: never touch the network; a model that is not cached fails at once with a
  message naming the file and the offline choice.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch
from torch import nn

from .convert import convert_state_dict, unwrap_checkpoint
from .face.retinaface import RetinaFace
from .models import GFPGAN, GPEN, StyleGAN2Generator

__all__ = [
    "ARCHITECTURES",
    "ChecksumError",
    "ModelCard",
    "ModelUnavailableError",
    "UnknownModelError",
    "UnsafeCheckpointError",
    "build_model",
    "get_card",
    "is_cached",
    "list_models",
    "load_model",
    "model_card",
    "register",
    "resolve_file",
    "save_checkpoint",
    "sha256_file",
]

log = logging.getLogger(__name__)

ARCHITECTURES: Mapping[str, type[nn.Module]] = MappingProxyType(
    {"gfpgan": GFPGAN, "gpen": GPEN, "stylegan2": StyleGAN2Generator, "retinaface": RetinaFace}
)

OFFLINE_CHOICE = "embedded"


class UnknownModelError(KeyError):
    """No registered model has this name."""

    def __str__(self) -> str:
        return str(self.args[0])


class ModelUnavailableError(RuntimeError):
    """The checkpoint file cannot be obtained (offline, not cached, unreachable Hub)."""


class ChecksumError(RuntimeError):
    """The downloaded or given file does not have the pinned sha256."""


class UnsafeCheckpointError(RuntimeError):
    """The checkpoint is a pickle that needs code execution to load; it is refused."""


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to fetch, verify, build and load one released checkpoint."""

    name: str  # registry key, e.g. 'gfpgan-v1.4'
    arch: Literal["gfpgan", "gpen", "stylegan2", "retinaface"]  # key of ARCHITECTURES
    config: Mapping[str, Any]  # keyword arguments of the architecture
    task: Literal["restore", "prior", "detect"]  # face restorer, unconditional generator, or face detector
    filename: str  # file name on the Hub, or path relative to the package for embedded models
    converter: str  # key of gfr_core.convert.CONVERTERS
    license: str  # license of the weights (and the data they were trained on)
    paper: str  # citation
    repo_id: str | None = None  # Hugging Face repo; None for weights shipped inside the package
    revision: str = "main"  # pinned Hub revision (a commit hash where known)
    sha256: str | None = None  # expected file checksum; None only where no trusted value is known
    size_bytes: int | None = None  # expected file size
    crop_zoom: float = 1.0  # alignment template zoom the model expects (gfr_core.face.template)
    description: str = ""  # one line for listings
    extras: Mapping[str, Any] = field(default_factory=dict)  # e.g. training record of embedded models

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        object.__setattr__(self, "extras", MappingProxyType(dict(self.extras)))
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"{self.name}: unknown arch {self.arch!r}")

    @property
    def face_size(self) -> int:
        """Input/output resolution of the network."""
        return int(self.config.get("out_size", self.config.get("size", 512)))

    @property
    def embedded(self) -> bool:
        """Shipped inside the package (works offline)."""
        return self.repo_id is None

    @property
    def source_repo(self) -> str | None:
        """Hub repo actually used, honouring ``GFR_HUB_MIRROR``."""
        if self.repo_id is None:
            return None
        return os.environ.get("GFR_HUB_MIRROR") or self.repo_id


_REGISTRY: dict[str, ModelCard] = {}


def register(card: ModelCard) -> ModelCard:
    """Add a card to the registry (names are unique)."""
    if card.name in _REGISTRY:
        raise ValueError(f"model {card.name!r} is already registered")
    _REGISTRY[card.name] = card
    return card


def list_models(task: Literal["restore", "prior", "detect"] | None = None) -> list[str]:
    """Names of registered models, optionally only restorers, priors or detectors."""
    return [n for n, c in _REGISTRY.items() if task is None or c.task == task]


def get_card(name: str) -> ModelCard:
    """The card registered under ``name``; raises :class:`UnknownModelError` with suggestions."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Run `gfr models` to list them: {', '.join(_REGISTRY)}"
        ) from None


def build_model(card: ModelCard) -> nn.Module:
    """Instantiate the card's architecture with random weights."""
    return ARCHITECTURES[card.arch](**card.config)


# ---------------------------------------------------------------------------------------------------
# Files


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _package_file(card: ModelCard) -> Path:
    return Path(__file__).resolve().parent / card.filename


def is_cached(card: ModelCard) -> bool:
    """True if the checkpoint is available without the network."""
    if card.embedded:
        return _package_file(card).is_file()
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(card.source_repo, card.filename, revision=card.revision)
    return isinstance(hit, str)


def _offline_hint(card: ModelCard) -> str:
    other = f" or use the offline model '{OFFLINE_CHOICE}'" if OFFLINE_CHOICE in _REGISTRY and card.name != OFFLINE_CHOICE else ""
    return (
        f"download it once where the Hub is reachable (`gfr download {card.name}`), "
        f"pass a local copy of {card.filename} as the model path{other}"
    )


def resolve_file(card: ModelCard) -> Path:
    """Local path of the card's checkpoint, downloading it from the Hub if needed, checksum verified."""
    if card.embedded:
        path = _package_file(card)
        if not path.is_file():
            raise ModelUnavailableError(f"{card.name}: packaged file {path} is missing; reinstall gfr_core")
    else:
        path = _fetch_from_hub(card)
    _verify_checksum(card, path)
    return path


def _offline() -> bool:
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
    if _offline() or not _reachable(endpoint):
        why = "HF_HUB_OFFLINE is set" if _offline() else f"{endpoint} is unreachable"
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
    if card.sha256 is None:
        log.warning("%s: no pinned sha256 for %s; computed %s", card.name, card.filename, sha256_file(path))
        return
    digest = sha256_file(path)
    if digest != card.sha256:
        raise ChecksumError(
            f"{card.name}: sha256 of {path} is {digest}, expected {card.sha256}; "
            "the file is corrupt or not the released one: delete it and download again"
        )


def load_checkpoint(path: str | Path) -> Any:
    """Read a ``.safetensors`` file, or a torch pickle with ``weights_only=True`` (no code execution)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"{path}: refused to load, the pickle needs code execution ({str(exc).splitlines()[0]}); "
            "convert it to safetensors in a trusted environment"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ChecksumError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); download it again") from None


# ---------------------------------------------------------------------------------------------------
# Models


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    arch: str,
    config: Mapping[str, Any],
    metadata: Mapping[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a self-describing ``.safetensors`` checkpoint of one of our architectures.

    The architecture name and constructor config are stored in the file's metadata, so
    ``load_model(path)`` rebuilds the model without a registry entry. A generator's ``w_avg`` is kept too.
    ``dtype`` (e.g. ``torch.float16``) shrinks the file; loading casts back to the model's fp32 parameters.
    """
    import json

    from safetensors.torch import save_file

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}")
    sd = {k: v.detach().to(dtype or v.dtype).contiguous().cpu() for k, v in model.state_dict().items()}
    if isinstance(model, StyleGAN2Generator):
        sd[_W_AVG_KEY] = model.w_avg.detach().float().cpu()
    meta = {"gfr_arch": arch, "gfr_config": json.dumps(dict(config)), **(metadata or {})}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(sd, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


_W_AVG_KEY = "_w_avg"


def _read_native(path: Path) -> tuple[str, dict[str, Any], float] | None:
    """(arch, config, crop zoom) from a checkpoint written by :func:`save_checkpoint`, else None."""
    import json

    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise ChecksumError(f"{path}: not a readable safetensors file ({exc}); download or export it again") from None
    if "gfr_arch" not in meta:
        return None
    return meta["gfr_arch"], json.loads(meta["gfr_config"]), float(meta.get("gfr_crop_zoom", 1.0))


def _native_card(path: Path) -> ModelCard | None:
    """The card recorded in a checkpoint written by :func:`save_checkpoint`, else None."""
    native = _read_native(path) if path.suffix == ".safetensors" else None
    if native is None:
        return None
    arch_name, config, zoom = native
    return ModelCard(name=path.stem, arch=arch_name, config=config, task="restore" if arch_name != "stylegan2" else "prior",
                     filename=str(path), converter="native", license="see file", paper="", crop_zoom=zoom)


def model_card(name_or_path: str | Path) -> ModelCard | None:
    """The card of a registered model, or the one recorded in a gfr-written ``.safetensors``; None otherwise.

    Reads no weights (for a file, only its safetensors header).
    """
    if str(name_or_path) in _REGISTRY:
        return _REGISTRY[str(name_or_path)]
    path = Path(name_or_path)
    return _native_card(path) if path.is_file() else None


def _load_into(card: ModelCard, obj: Any, device: str | torch.device) -> nn.Module:
    sd, extras = unwrap_checkpoint(obj)
    if _W_AVG_KEY in sd:
        extras["latent_avg"] = sd.pop(_W_AVG_KEY)
    converted = convert_state_dict(card.converter, sd)
    model = build_model(card)
    model.load_state_dict(converted, strict=True)
    gen = model if isinstance(model, StyleGAN2Generator) else None
    if gen is not None:
        if "latent_avg" in extras:
            gen.w_avg.copy_(extras["latent_avg"].reshape(-1))
        else:
            gen.update_w_avg()
    return model.to(device).eval()


def _guess_card(obj: Any) -> ModelCard:
    """Find the registered card whose converter and architecture accept this checkpoint."""
    sd, _ = unwrap_checkpoint(obj)
    for card in _REGISTRY.values():
        try:
            converted = convert_state_dict(card.converter, sd)
        except (KeyError, ValueError):
            continue
        with torch.device("meta"):
            ref = build_model(card).state_dict()
        if set(ref) == set(converted) and all(ref[k].shape == converted[k].shape for k in ref):
            return card
    raise UnknownModelError(
        "the checkpoint matches none of the registered architectures; pass arch=<model name> with a compatible layout"
    )


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu", *, arch: str | None = None) -> nn.Module:
    """Load a registered model by name, or a local checkpoint file.

    Args:
        name_or_path: A name from :func:`list_models`, or a path to a ``.pth`` / ``.pt`` / ``.safetensors``.
        device: Target device.
        arch: For a local file, the registered model whose architecture it has; guessed from the keys when
            omitted.

    Returns:
        The model in eval mode.

    Raises:
        UnknownModelError, ModelUnavailableError, ChecksumError, UnsafeCheckpointError, UnmatchedKeysError.
    """
    path = Path(name_or_path)
    if str(name_or_path) not in _REGISTRY and (path.suffix in (".pth", ".pt", ".ckpt", ".safetensors") or path.exists()):
        if not path.is_file():
            raise ModelUnavailableError(f"{path}: no such checkpoint file")
        card = _native_card(path) if arch is None else None
        if card is not None:
            return _load_into(card, load_checkpoint(path), device)
        obj = load_checkpoint(path)
        card = get_card(arch) if arch else _guess_card(obj)
        log.info("loading %s as %s", path, card.name)
        return _load_into(card, obj, device)
    card = get_card(str(name_or_path))
    file = resolve_file(card)
    log.info("loading %s from %s", card.name, file)
    return _load_into(card, load_checkpoint(file), device)


# ---------------------------------------------------------------------------------------------------
# Registry of released checkpoints

_GFPGAN_PAPER = "Wang, Li, Zhang, Shan. Towards Real-World Blind Face Restoration with Generative Facial Prior. CVPR 2021"
_GPEN_PAPER = "Yang, Ren, Xie, Zhang. GAN Prior Embedded Network for Blind Face Restoration in the Wild. CVPR 2021"
_SG2_PAPER = "Karras, Laine, Aittala, Hellsten, Lehtinen, Aila. Analyzing and Improving the Image Quality of StyleGAN. CVPR 2020"
_GFPGAN_CLEAN = dict(out_size=512, num_style_feat=512, channel_multiplier=2, narrow=1.0, sft_half=True, flavour="clean")
# The official files are GitHub release assets; the Hub copies below are mirrors. Repo ids and revisions
# could not be resolved from the offline development machines: pin each revision to a commit hash and
# fill in the missing sha256 values on first download (the loader logs the computed digest). The pinned
# digests and sizes are those of the GitHub release assets (GFPGAN v1.3.0 / v1.3.4, facexlib v0.1.0), as
# published by several independent downloaders; a mirror must serve the same bytes.
_GFPGAN_REPO = "gmk123/GFPGAN"  # community mirror of the TencentARC/GFPGAN release files
_GPEN_REPO = "gfr-project/face-priors"  # project mirror for GPEN and StyleGAN2 files
_SG2_REPO = _GPEN_REPO

for _card in (
    ModelCard(
        name="gfpgan-v1.4",
        arch="gfpgan",
        config=_GFPGAN_CLEAN,
        task="restore",
        repo_id=_GFPGAN_REPO,
        filename="GFPGANv1.4.pth",
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        size_bytes=348_632_874,
        converter="gfpgan_clean",
        license="Apache-2.0 (TencentARC/GFPGAN); trained on FFHQ (CC BY-NC-SA 4.0)",
        paper=_GFPGAN_PAPER,
        description="GFPGAN v1.4 (clean arch): more details and better identity than v1.3",
    ),
    ModelCard(
        name="gfpgan-v1.3",
        arch="gfpgan",
        config=_GFPGAN_CLEAN,
        task="restore",
        repo_id=_GFPGAN_REPO,
        filename="GFPGANv1.3.pth",
        sha256="c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70",
        size_bytes=348_632_874,
        converter="gfpgan_clean",
        license="Apache-2.0 (TencentARC/GFPGAN); trained on FFHQ (CC BY-NC-SA 4.0)",
        paper=_GFPGAN_PAPER,
        description="GFPGAN v1.3 (clean arch): natural results, handles high-quality inputs",
    ),
    ModelCard(
        name="gfpgan-v1.2",
        arch="gfpgan",
        config=_GFPGAN_CLEAN,
        task="restore",
        repo_id=_GFPGAN_REPO,
        filename="GFPGANCleanv1-NoCE-C2.pth",
        converter="gfpgan_clean",
        license="Apache-2.0 (TencentARC/GFPGAN); trained on FFHQ (CC BY-NC-SA 4.0)",
        paper=_GFPGAN_PAPER,
        description="GFPGAN v1.2 (clean arch, no colorization): sharper, with a make-up look",
    ),
    ModelCard(
        name="gfpgan-v1",
        arch="gfpgan",
        config=dict(out_size=512, num_style_feat=512, channel_multiplier=1, narrow=1.0, sft_half=True, flavour="original"),
        task="restore",
        repo_id=_GFPGAN_REPO,
        filename="GFPGANv1.pth",
        converter="gfpgan_original",
        license="Apache-2.0 code with StyleGAN2 parts under the NVIDIA Source Code License; FFHQ (CC BY-NC-SA 4.0)",
        paper=_GFPGAN_PAPER,
        description="GFPGAN v1, the paper model (original StyleGAN2 arch, colorizes)",
    ),
    ModelCard(
        name="gpen-bfr-512",
        arch="gpen",
        config=dict(size=512, style_dim=512, n_mlp=8, channel_multiplier=2, narrow=1.0),
        task="restore",
        repo_id=_GPEN_REPO,
        filename="GPEN-BFR-512.pth",
        converter="gpen",
        license="GPEN: non-commercial research use (yangxy/GPEN); FFHQ (CC BY-NC-SA 4.0)",
        paper=_GPEN_PAPER,
        description="GPEN blind face restoration, 512 px",
    ),
    ModelCard(
        name="gpen-bfr-256",
        arch="gpen",
        config=dict(size=256, style_dim=512, n_mlp=8, channel_multiplier=1, narrow=0.5),
        task="restore",
        repo_id=_GPEN_REPO,
        filename="GPEN-BFR-256.pth",
        converter="gpen",
        license="GPEN: non-commercial research use (yangxy/GPEN); FFHQ (CC BY-NC-SA 4.0)",
        paper=_GPEN_PAPER,
        description="GPEN blind face restoration, 256 px (narrow 0.5)",
    ),
    ModelCard(
        name="stylegan2-ffhq-512",
        arch="stylegan2",
        config=dict(size=512, style_dim=512, n_mlp=8, channel_multiplier=1, flavour="original"),
        task="prior",
        repo_id=_GFPGAN_REPO,
        filename="StyleGAN2_512_Cmul1_FFHQ_B12G4_scratch_800k.pth",
        converter="stylegan2_basicsr",
        license="FFHQ-trained (CC BY-NC-SA 4.0); released with TencentARC/GFPGAN",
        paper=_SG2_PAPER,
        description="StyleGAN2 FFHQ 512 px, channel multiplier 1: the prior GFPGAN v1 was trained with",
    ),
    ModelCard(
        name="stylegan2-ffhq-1024",
        arch="stylegan2",
        config=dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2, flavour="original"),
        task="prior",
        repo_id=_SG2_REPO,
        filename="stylegan2-ffhq-config-f.pt",
        converter="stylegan2_rosinality",
        license="NVIDIA Source Code License-NC (non-commercial); FFHQ (CC BY-NC-SA 4.0)",
        paper=_SG2_PAPER,
        description="StyleGAN2 config-f FFHQ 1024 px (rosinality conversion, g_ema + latent_avg)",
    ),
    ModelCard(
        name="retinaface-r50",
        arch="retinaface",
        config={},
        task="detect",
        repo_id="camenduru/facexlib",
        filename="detection_Resnet50_Final.pth",
        sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        size_bytes=109_497_761,
        converter="retinaface",
        license="MIT (biubug6/Pytorch_Retinaface, xinntao/facexlib); trained on WIDER FACE (research use)",
        paper="Deng, Guo, Ververas, Kotsia, Zafeiriou. RetinaFace: Single-shot Multi-level Face Localisation in the Wild. CVPR 2020",
        description="RetinaFace ResNet-50 face detector with 5 landmarks (GFPGAN's default detector)",
    ),
):
    register(_card)


def _embedded_cards() -> list[ModelCard]:
    """Cards of the models this project trains and ships (gfr_core/weights/), from their metadata files."""
    import json

    wdir = Path(__file__).resolve().parent / "weights"
    cards = []
    for meta in sorted(wdir.glob("*.json")):
        info = json.loads(meta.read_text())
        cards.append(ModelCard(**info))
    return cards


for _card in _embedded_cards():
    register(_card)
