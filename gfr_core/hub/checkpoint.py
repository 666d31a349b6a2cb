"""Checkpoint files: sha256, safe reading (safetensors, or ``torch.load(weights_only=True)``) and writing.

A file written by :func:`save_checkpoint` describes itself: its safetensors metadata holds the family
(``gfr_arch``) and the model's frozen config (``gfr_config``), so loading rebuilds the model without a
registry entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models.family import config_to_dict
from .errors import ChecksumError, UnsafeCheckpointError
from .registry import FAMILIES_BY_ARCH

__all__ = ["load_checkpoint", "read_native", "save_checkpoint", "sha256_file", "unwrap_checkpoint"]


def sha256_file(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"<", "an HTML or XML page (an error page instead of the download?)"),
    (b"{", "a JSON file"),
    (b"version https://git-lfs", "a Git LFS pointer (run `git lfs pull`)"),
)


def _sniff(path: Path, head: bytes) -> None:
    """Refuse, in one line, a file that is plainly not a checkpoint of its suffix (before any parser runs)."""
    if path.suffix == ".safetensors":
        if len(head) >= 9 and head[8:9] == b"{":
            return
    elif head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch zip, or a legacy pickle
        return
    what = next((name for sig, name in _SIGNATURES if head.startswith(sig)), None)
    kind = "safetensors file" if path.suffix == ".safetensors" else "PyTorch checkpoint (zip or pickle)"
    if what is not None:
        raise ChecksumError(f"{path}: this is {what}, not a {kind}; give the model file itself")
    if not head:
        raise ChecksumError(f"{path}: the file is empty; download or export it again")
    if path.suffix == ".safetensors":
        raise ChecksumError(f"{path}: not a {kind} (no JSON header); download or export it again")


def check_file_kind(path: Path) -> None:
    """One clear line for an unreadable file, or one that is plainly not a checkpoint of its suffix."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except PermissionError:
        raise ChecksumError(f"{path}: permission denied; make the file readable (chmod +r)") from None
    except IsADirectoryError:
        raise ChecksumError(f"{path}: is a folder, not a checkpoint file") from None
    _sniff(path, head)
    if path.suffix == ".safetensors":
        n = int.from_bytes(head[:8], "little")
        if 8 + n > path.stat().st_size:
            raise ChecksumError(
                f"{path}: the file is truncated ({path.stat().st_size} bytes, its header alone needs {8 + n}); "
                "download or export it again"
            )


def load_checkpoint(path: str | Path) -> Any:
    """Read a ``.safetensors`` file, or a torch pickle with ``weights_only=True`` (no code execution)."""
    path = Path(path)
    if path.suffix != ".param":
        check_file_kind(path)
    if path.suffix == ".param":  # an ncnn graph and its weights beside it, as raw bytes for the ncnn converter
        from ..models.rrdbnet.convert import NCNN_BIN, NCNN_PARAM

        blob = path.with_suffix(".bin")
        if not blob.is_file():
            raise ChecksumError(f"{path}: the ncnn weights {blob.name} are missing beside it; reinstall that package")
        return {
            NCNN_PARAM: torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8),
            NCNN_BIN: torch.frombuffer(bytearray(blob.read_bytes()), dtype=torch.uint8),
        }
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise ChecksumError(
                f"{path}: not a readable safetensors file ({exc}); download or export it again"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported operand" in str(exc).lower() or "weights only load failed" not in str(exc).lower():
            # not a refusal of code: bytes no pickle can read (a corrupt or foreign file)
            detail = next((x.strip() for x in str(exc).splitlines() if "operand" in x.lower()), "unreadable pickle")
            raise ChecksumError(
                f"{path}: not a readable PyTorch checkpoint (corrupt or another kind of file: {detail}); "
                "download it again"
            ) from None
        raise UnsafeCheckpointError(
            f"{path}: refused to load, the pickle needs code execution ({str(exc).splitlines()[0]}); "
            "to convert it safely, load it once in a throwaway environment with the code it was made with, save "
            "only its tensors (torch.save(state_dict) or safetensors), and load that file"
        ) from None
    except Exception as exc:  # a damaged file makes the unpickler fail in many ways (EOFError, IndexError, ...)
        raise ChecksumError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "download it again"
        ) from None


def unwrap_checkpoint(obj: Any) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Find the generator state_dict inside a loaded checkpoint.

    Order: ``params_ema`` (BasicSR / GFPGAN / CodeFormer), ``params``, ``g_ema`` (rosinality),
    ``state_dict`` (PyTorch Lightning: RestoreFormer), else a bare state_dict.

    Returns:
        (state_dict, extras) where extras may hold ``latent_avg`` (rosinality's truncation centre).
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint holds a {type(obj).__name__}, not a dict of tensors")
    for key in ("params_ema", "params", "g_ema", "state_dict"):
        if key in obj and isinstance(obj[key], Mapping):
            bad = next((k for k, v in obj[key].items() if not isinstance(v, Tensor)), None)
            if bad is not None:
                raise ValueError(
                    f"checkpoint's {key!r} holds a {type(obj[key][bad]).__name__} at {bad!r}, not a tensor; "
                    "the file is damaged or not a model checkpoint"
                )
            extras = {k: v for k, v in obj.items() if k == "latent_avg" and isinstance(v, Tensor)}
            return dict(obj[key]), extras
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        return dict(obj), {}
    raise ValueError(
        "checkpoint has no 'params_ema', 'params', 'g_ema' or 'state_dict' entry and is not a bare state_dict "
        f"(top-level keys: {list(obj)[:8]})"
    )


def _arch_of(model: nn.Module) -> str:
    for arch, fam in FAMILIES_BY_ARCH.items():
        if type(model) is fam.network:
            return arch
    raise ValueError(f"{type(model).__name__} is not a registered architecture ({', '.join(FAMILIES_BY_ARCH)})")


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    arch: str | None = None,
    config: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a self-describing ``.safetensors`` checkpoint of one of our architectures, atomically.

    The family and ``model.config`` go into the file's metadata (``arch`` and ``config`` are checked
    against them when given). ``dtype`` (e.g. ``torch.float16``) shrinks the weights; ``w_avg`` buffers
    stay fp32, and loading casts back to the model's fp32 parameters.
    """
    from safetensors.torch import save_file

    found = _arch_of(model)
    if arch is not None and arch != found:
        raise ValueError(f"arch {arch!r} given, but the model is a {found!r}")
    cfg = config_to_dict(model.config)
    if config is not None and {k: v for k, v in cfg.items() if k in config} != {
        k: list(v) if isinstance(v, tuple) else v for k, v in config.items()
    }:
        raise ValueError(f"config {dict(config)} differs from the model's own {cfg}")

    def cast(k: str, v: Tensor) -> Tensor:
        keep = dtype is None or not v.is_floating_point() or k.endswith("w_avg")
        return v.detach().to(v.dtype if keep else dtype).contiguous().cpu()

    sd = {k: cast(k, v) for k, v in model.state_dict().items()}
    meta = {"gfr_arch": found, "gfr_config": json.dumps(cfg), **(metadata or {})}
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(sd, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_native(path: Path) -> tuple[str, dict[str, Any], float] | None:
    """(arch, config, crop zoom) from a checkpoint written by :func:`save_checkpoint`, else None."""
    from safetensors import safe_open

    check_file_kind(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise ChecksumError(f"{path}: not a readable safetensors file ({exc}); download or export it again") from None
    if "gfr_arch" not in meta:
        return None
    try:
        config = json.loads(meta["gfr_config"])
        zoom = float(meta.get("gfr_crop_zoom", 1.0))
    except (KeyError, ValueError) as exc:
        raise ChecksumError(f"{path}: its gfr metadata is damaged ({exc}); export it again") from None
    if not 0.5 <= zoom <= 3.0:  # NaN fails too
        raise ChecksumError(
            f"{path}: its gfr_crop_zoom {zoom!r} is outside 0.5-3; the metadata is damaged: export it again"
        )
    if not isinstance(config, dict):
        raise ChecksumError(f"{path}: its gfr_config is not a JSON object; export it again")
    return meta["gfr_arch"], config, zoom
