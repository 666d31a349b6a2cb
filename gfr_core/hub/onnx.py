"""ONNX export of the registry's restorers and upsampler, and their ONNX Runtime sessions.

The graph comes from ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``-based exporter, the
current one; the TorchScript exporter is deprecated). Restorers are traced in their shared-weight
modulated-conv formulation (``fused=False``): the grouped one folds the batch into the conv's groups, a
batch-dependent attribute that a dynamic batch axis cannot carry. The noise is constant, so the graph is
deterministic. Axes: batch dynamic for restorers; batch, height and width for the x4 upsampler.

Every file records in its metadata the model name, the sha256 of the checkpoint it came from, the input
layout and the license; :func:`onnx_file` exports once per checkpoint digest into the download folder.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
from pathlib import Path

import torch
from torch import nn

from ..io.files import publish
from .checkpoint import sha256_file
from .download import download_dir, resolve_file
from .errors import ModelUnavailableError
from .loading import load_model, model_card

__all__ = [
    "NOT_EXPORTED",
    "ONNX_LAYOUTS",
    "OnnxGraph",
    "example_input",
    "export_onnx",
    "onnx_file",
    "onnx_max_abs_diff",
    "onnx_session",
    "source_digest",
]

log = logging.getLogger(__name__)

ONNX_LAYOUTS = {
    "restore": "(B,3,H,W) float32 RGB in [-1,1] -> (B,3,H,W) in [-1,1]",
    "upsample": "(B,3,H,W) float32 RGB in [0,1] -> (B,3,4H,4W) in [0,1]",
}
"""Input / output layout written into each file's metadata, by task."""

NOT_EXPORTED = ("codeformer", "restoreformer")
"""Architectures whose ONNX export is not built yet (their restorers run with PyTorch)."""


class OnnxGraph(nn.Module):
    """The function that is exported: the network's image output, in the formulation that exports.

    ``OnnxGraph(net)(x)`` is the PyTorch side of every parity check against the exported file.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.kw = {"fused": False} if "fused" in inspect.signature(net.forward).parameters else {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x, **self.kw)
        return y[0] if isinstance(y, tuple) else y


def _cpu_fp32(net: nn.Module) -> nn.Module:
    """``net`` in eval mode as fp32 on the CPU, where ONNX graphs are traced and checked; a network that is
    elsewhere (CUDA, bf16) is copied, so that the caller's stays where it is."""
    tensors = [*net.parameters(), *net.buffers()]
    if any(t.device.type != "cpu" or (t.is_floating_point() and t.dtype != torch.float32) for t in tensors):
        net = copy.deepcopy(net).float().cpu()
    return net.eval()


def example_input(
    net: nn.Module, task: str, *, batch: int, seed: int = 0, hw: tuple[int, int] = (24, 20)
) -> torch.Tensor:
    """A fixed input in the layout of the exported file: (B,3,S,S) in [-1,1] for a restorer (S its
    resolution), (B,3,H,W) in [0,1] for the x4 upsampler (``hw``; any size works there)."""
    gen = torch.Generator().manual_seed(seed)
    if task == "upsample":
        return torch.rand(batch, 3, *hw, generator=gen)
    size = int(net.config.out_size if hasattr(net.config, "out_size") else net.config.size)
    return torch.rand(batch, 3, size, size, generator=gen) * 2 - 1


def onnx_max_abs_diff(path: str | Path, net: nn.Module, x: torch.Tensor) -> float:
    """Max abs difference, on ``x``, between the exported file run by ONNX Runtime (CPU) and the network's
    own PyTorch forward (its default formulation, not the exported one: the check covers both)."""
    import numpy as np

    with torch.no_grad():
        ref = _cpu_fp32(net)(x)
    ref = (ref[0] if isinstance(ref, tuple) else ref).numpy()
    got = onnx_session(path).run(None, {"image": x.numpy()})[0]
    if got.shape != ref.shape:
        raise ValueError(f"{path}: ONNX output {got.shape} != PyTorch output {ref.shape} for input {tuple(x.shape)}")
    return float(np.abs(got - ref).max())


def _require_onnx() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelUnavailableError(
            f"ONNX support needs {', '.join(missing)}: pip install -e '.[onnx]' (onnx, onnxscript, onnxruntime)"
        )


def source_digest(name_or_path: str | Path) -> str:
    """sha256 of the checkpoint a model comes from (the card's pin, else the file's)."""
    card = model_card(name_or_path)
    if card is not None and card.sha256:
        return card.sha256
    path = Path(name_or_path) if Path(name_or_path).is_file() else resolve_file(card) if card else None
    if path is None:
        raise ModelUnavailableError(f"{name_or_path}: no such model or checkpoint file")
    return sha256_file(path)


def export_onnx(
    name_or_path: str | Path, path: str | Path, *, model: nn.Module | None = None, overwrite: bool = False
) -> Path:
    """Export a registered restorer / upsampler (or a checkpoint file) to ``path``, checked by onnx.checker.

    ``model``: an already loaded network to export instead of loading ``name_or_path`` (which still names
    it in the metadata). Written atomically; an existing ``path`` is replaced only with ``overwrite``
    (else ``FileExistsError``, also when another process wrote it meanwhile).
    """
    _require_onnx()
    import onnx

    card = model_card(name_or_path)
    task = card.task if card is not None else "restore"
    if card is not None and card.arch in NOT_EXPORTED:
        raise ValueError(
            f"{name_or_path}: the ONNX export of the codebook priors is not built yet; run it with PyTorch"
        )
    if task not in ONNX_LAYOUTS:
        raise ValueError(f"{name_or_path} is a {task} model; ONNX export covers restorers and the upsampler")
    net = _cpu_fp32(model if model is not None else load_model(name_or_path))
    graph = OnnxGraph(net).eval()
    x = example_input(net, task, batch=2)  # traced at 2: a traced size of 1 would be specialized
    shapes = {0: torch.export.Dim("batch", min=1, max=256)}
    if task == "upsample":
        shapes |= {2: torch.export.Dim("height", min=8, max=4096), 3: torch.export.Dim("width", min=8, max=4096)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    label = str(card.name if card is not None else Path(name_or_path).name)
    meta = {
        "gfr_model": label if model is None else f"{label} architecture, weights supplied by the caller",
        "gfr_source_sha256": source_digest(name_or_path) if model is None else "",
        "gfr_layout": ONNX_LAYOUTS[task],
        "gfr_license": card.license if card is not None else "see the source checkpoint",
        "gfr_exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "gfr_noise": "constant (deterministic)",
    }
    try:
        with torch.no_grad():
            program = torch.onnx.export(
                graph,
                (x,),
                dynamo=True,
                dynamic_shapes=(shapes,),
                input_names=["image"],
                output_names=["output"],
                verbose=False,
            )
        program.model.metadata_props.clear()
        program.model.metadata_props.update(meta)
        program.save(tmp, external_data=False)  # one self-contained file (every restorer is far below 2 GB)
        onnx.checker.check_model(str(tmp), full_check=True)
        publish(str(tmp), path, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s to %s", name_or_path, path)
    return path


def onnx_file(name_or_path: str | Path) -> Path:
    """The cached ``.onnx`` of a model, keyed by its checkpoint's sha256; exported on first use.

    The export's own sha256 is recorded beside it (``<file>.sha256``): a cached export that is truncated,
    damaged or replaced (a valid graph computing something else) no longer matches, and is exported again.
    """
    digest = source_digest(name_or_path)
    card = model_card(name_or_path)
    stem = card.name if card is not None else Path(name_or_path).stem
    path = download_dir() / "onnx" / f"{stem}-{digest[:16]}.onnx"
    record = path.with_name(path.name + ".sha256")
    if path.is_file():
        try:
            expected = record.read_text().strip()
        except OSError:
            expected = None
        if expected == sha256_file(path):
            if not _external_data(path):
                return path
            log.warning("the cached ONNX export %s is not gfr's (it refers to files beside it): exported again", path)
        else:
            log.warning("the cached ONNX export %s does not match its recorded sha256; exporting it again", path)
    else:
        log.warning("exporting %s to ONNX once (%s)", stem, path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, record):
            stale.unlink(missing_ok=True)
        export_onnx(name_or_path, path, overwrite=True)
        tmp = record.with_name(f".{record.name}.{os.getpid()}")
        tmp.write_text(sha256_file(path) + "\n")
        os.replace(tmp, record)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot write the ONNX export {path} ({exc.strerror or exc}); set GFR_CACHE to a writable folder, "
            "or use the PyTorch backend"
        ) from None
    return path


def _external_data(path: Path) -> bool:
    """Whether an ``.onnx`` file keeps any tensor in another file (gfr's exports are self-contained, so such a
    file is not gfr's; its external data could point anywhere). Reads the graph only, no external file; once
    per version of the file (:func:`onnx_file` and :func:`onnx_session` both ask)."""
    try:
        st = path.stat()
    except OSError:  # no such file: ONNX Runtime says so when it opens it
        return False
    return _external_data_of(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _external_data_of(path: str, mtime_ns: int, size: int) -> bool:
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not a readable graph: ONNX Runtime says so when it opens it
        return False
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    return any(uses_external_data(t) for t in tensors)


def onnx_session(path: str | Path, device: str | torch.device = "cpu"):
    """An ONNX Runtime session: the CUDA execution provider on a CUDA device where present, else CPU.

    A graph that keeps tensors in other files is refused: external data is never loaded."""
    _require_onnx()
    import onnxruntime as ort

    if _external_data(Path(path)):
        raise ModelUnavailableError(
            f"{path}: this ONNX file keeps its weights in other files, which gfr never loads; export it again "
            "with gfr export-onnx (one self-contained file)"
        )

    providers = ["CPUExecutionProvider"]
    if torch.device(device).type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            log.warning("this onnxruntime has no CUDA execution provider (pip install onnxruntime-gpu): using the CPU")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
