"""Real-ESRGAN checkpoints -> :class:`RRDBNet` keys: the official ``.pth`` and the ncnn ``.param`` / ``.bin`` pair.

The ncnn converter reads the graph, not only the weights: every layer must be one RRDBNet has (input,
convolution, split, concat, the 0.2-scaled residual sums, the skip add, nearest x2 interpolation), and the
351 convolutions must come in our module order with our shapes, padding, bias and activation (leaky ReLU
0.2 exactly where we have it). The ``.bin`` must then hold exactly those weights (fp16 or fp32 blobs,
fp32 biases) and nothing more. Anything else raises :class:`UnmatchedKeysError` or ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from ...nn import ConvLayer
from ..family import Converter, UnmatchedKeysError
from .config import RRDBNetConfig

__all__ = ["CONVERTERS", "NCNN_BIN", "NCNN_PARAM", "ncnn_state_dict"]

NCNN_PARAM, NCNN_BIN = "ncnn.param", "ncnn.bin"
"""Keys under which :func:`gfr_core.hub.load_checkpoint` hands the raw bytes of an ncnn pair to the converter."""

_KEY = re.compile(
    r"(conv_first|conv_body|conv_up1|conv_up2|conv_hr|conv_last|body\.\d+\.rdb[123]\.conv[1-5])\.(weight|bias)"
)
_FP16, _FP32 = 0x01306B47, 0x00000000  # ncnn weight-blob tags
_ALLOWED = {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}


def _official(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: RRDBNetConfig) -> dict[str, Tensor]:
    bad = [k for k in sd if not _KEY.fullmatch(k)]
    if bad:
        raise UnmatchedKeysError(f"converter 'realesrgan' cannot place {len(bad)} key(s): {', '.join(bad[:5])}")
    return dict(sd)


def _layers(param: str) -> list[tuple[str, str, dict[str, str]]]:
    lines = [ln.split() for ln in param.splitlines() if ln.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise ValueError("not an ncnn .param file (its first line must be the magic 7767517)")
    out = []
    for parts in lines[2:]:
        kind, name, nin, nout = parts[0], parts[1], int(parts[2]), int(parts[3])
        params = dict(p.split("=", 1) for p in parts[4 + nin + nout :])
        out.append((kind, name, params))
    if len(out) != int(lines[1][0]):
        raise ValueError(f"ncnn .param declares {lines[1][0]} layers but lists {len(out)}")
    return out


def _convs(cfg: RRDBNetConfig) -> list[tuple[str, ConvLayer]]:
    from .network import RRDBNet

    with torch.device("meta"):
        net = RRDBNet(**{k: getattr(cfg, k) for k in ("scale", "num_feat", "num_block", "num_grow_ch")})
    return [(n, m) for n, m in net.named_modules() if isinstance(m, ConvLayer)]


def _check_graph(layers: list[tuple[str, str, dict[str, str]]], cfg: RRDBNetConfig) -> None:
    kinds = [k for k, _, _ in layers]
    unknown = sorted(set(kinds) - _ALLOWED)
    if unknown:
        raise ValueError(f"ncnn graph has layers RRDBNet does not: {', '.join(unknown)}")
    eltwise = [p for k, _, p in layers if k == "Eltwise"]
    if len(eltwise) != 4 * cfg.num_block or any(
        p.get("0") != "1" or p.get("-23301", "").split(",")[1:] != ["2.000000e-01", "1.000000e+00"] for p in eltwise
    ):
        raise ValueError(f"ncnn graph: expected {4 * cfg.num_block} residual sums 0.2 * branch + input")
    interp = [p for k, _, p in layers if k == "Interp"]
    if len(interp) != 2 or any(
        p.get("0") != "1" or float(p.get("1", 0)) != 2 or float(p.get("2", 0)) != 2 for p in interp
    ):
        raise ValueError("ncnn graph: expected two nearest x2 upsamplings")
    if kinds.count("BinaryOp") != 1 or kinds.count("Input") != 1:
        raise ValueError("ncnn graph: expected one input and one trunk skip addition")


def ncnn_state_dict(param: str, blob: bytes, cfg: RRDBNetConfig) -> dict[str, Tensor]:
    """Official-named state dict from an ncnn Real-ESRGAN pair, after checking its graph against ``cfg``."""
    layers = _layers(param)
    _check_graph(layers, cfg)
    graph = [(name, p) for k, name, p in layers if k == "Convolution"]
    ours = _convs(cfg)
    if len(graph) != len(ours):
        raise ValueError(f"ncnn graph has {len(graph)} convolutions, RRDBNet {cfg} has {len(ours)}")
    out: dict[str, Tensor] = {}
    pos = 0
    for (gname, p), (name, conv) in zip(graph, ours):
        cout, cin, k, _ = conv.weight.shape
        act = "9" in p
        want = {"0": str(cout), "1": str(k), "4": str(k // 2), "5": "1", "6": str(cout * cin * k * k)}
        got = {key: p.get(key) for key in want}
        if (
            got != want
            or act != (conv.activation == "lrelu")
            or (act and (p["9"], p.get("-23310")) != ("2", "1,2.000000e-01"))
        ):
            raise ValueError(
                f"ncnn layer {gname} does not match {name} (expected {want}, activation {conv.activation})"
            )
        if p.get("11", p["1"]) != p["1"] or p.get("3", "1") != "1" or p.get("2", "1") != "1":
            raise ValueError(f"ncnn layer {gname}: only square stride-1 undilated kernels are supported")
        if pos + 4 > len(blob):
            raise ValueError("ncnn .bin is truncated")
        tag = int.from_bytes(blob[pos : pos + 4], "little")
        pos += 4
        n = cout * cin * k * k
        if pos + (2 if tag == _FP16 else 4) * n + 4 * cout > len(blob):
            raise ValueError(f"ncnn .bin is truncated at layer {gname}; reinstall the package that ships it")
        if tag == _FP16:
            w = np.frombuffer(blob, np.float16, n, pos).astype(np.float32)
            pos += (2 * n + 3) // 4 * 4
        elif tag == _FP32:
            w = np.frombuffer(blob, np.float32, n, pos).copy()
            pos += 4 * n
        else:
            raise ValueError(
                f"ncnn .bin: weight blob of {gname} has tag {tag:#x} (int8 and other storages are not supported)"
            )
        bias = np.frombuffer(blob, np.float32, cout, pos).copy()
        pos += 4 * cout
        out[f"{name}.weight"] = torch.from_numpy(w.reshape(cout, cin, k, k))
        out[f"{name}.bias"] = torch.from_numpy(bias)
    if pos != len(blob):
        raise ValueError(
            f"ncnn .bin holds {len(blob) - pos} bytes more than the graph's weights; is it the matching file?"
        )
    return out


def _ncnn(sd: Mapping[str, Tensor], extras: Mapping[str, Tensor], cfg: RRDBNetConfig) -> dict[str, Tensor]:
    if set(sd) != {NCNN_PARAM, NCNN_BIN}:
        raise UnmatchedKeysError(f"converter 'ncnn' expects an ncnn .param / .bin pair, got keys {sorted(sd)[:5]}")
    param = bytes(sd[NCNN_PARAM].numpy()).decode("utf-8", "replace")
    return ncnn_state_dict(param, bytes(sd[NCNN_BIN].numpy()), cfg)


CONVERTERS: dict[str, Converter] = {"realesrgan": _official, "ncnn": _ncnn, "native": _official}
