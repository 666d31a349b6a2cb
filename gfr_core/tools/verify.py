"""Check ``gfr_core`` against reference fixtures of the official architectures (a developer tool).

Usage::

    python -m gfr_core.verify PATH...

For each parity ``.safetensors`` file (official small model: weights, inputs, outputs) it prints
``<file> max_abs_diff=<x>``; for each manifest ``.json`` (official full-size state_dict layout) it prints
``<file> keys=<n> mismatches=<m>``. It exits 1 if any file fails (diff > 1e-4, or any mismatch).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models import FAMILIES, GFPGAN, GPEN, CodeFormer, ParseNet, RestoreFormer, StyleGAN2Generator, mix_latents
from ..models.family import Family

__all__ = ["TOLERANCE", "official_to_ours", "verify_manifest", "verify_parity", "main"]

TOLERANCE = 1e-4


def official_to_ours(official_class: str, kw: dict[str, Any]) -> tuple[Family, Any, str]:
    """Translate an official class name and constructor kwargs into (our family, its config, converter name).

    Each family answers for its own official classes (:attr:`Family.from_official`).
    """
    for fam in FAMILIES:
        found = fam.from_official(official_class, kw) if fam.from_official else None
        if found is not None:
            return fam, found[0], found[1]
    raise ValueError(f"no gfr_core equivalent registered for official class {official_class!r}")


def _read_parity(path: Path) -> tuple[dict[str, Any], dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["fixture"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}

    def strip(prefix: str) -> dict[str, Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    return meta, strip("state_dict."), strip("input."), {k: v for k, v in tensors.items() if k.startswith("output.")}


def _run_official_forward(model: nn.Module, meta: dict[str, Any], inp: dict[str, Tensor]) -> dict[str, Tensor]:
    """Run our model the way the fixture's ``forward_call`` ran the official one."""
    fk = meta.get("forward_kwargs", {})
    noise_mode = "random" if fk.get("randomize_noise", True) and "noise" not in fk else "const"
    if isinstance(model, GFPGAN):
        latents, conditions, rgbs, _ = model.encode(inp["x"], return_rgb=True)
        out = {"output.0": model.decode(latents, conditions, noise_mode=noise_mode)}
        out.update({f"output.1.{i}": r for i, r in enumerate(rgbs)})
        return out
    if isinstance(model, ParseNet):
        logits, rgb = model(inp["x"])
        return {"output.0": logits, "output.1": rgb}
    if isinstance(model, CodeFormer):
        lq_feat, feats = model.encode(inp["x"])
        logits = model.code_logits(lq_feat)
        if fk.get("code_only"):
            return {"output.0": logits, "output.1": lq_feat}
        w, adain = float(fk.get("w", 0)), bool(fk.get("adain", False))
        image = model.decode(logits.argmax(-1), lq_feat, feats, w=w, adain=adain)
        return {"output.0": image, "output.1": logits, "output.2": lq_feat}
    if isinstance(model, RestoreFormer):
        return _restoreformer_outputs(model, inp["x"])
    if isinstance(model, GPEN):
        w, feats = model.encode(inp["x"])
        return {"output.0": model.decode(w, feats), "output.1": model.generator.broadcast(w)}
    assert isinstance(model, StyleGAN2Generator)
    styles = [inp[k] for k in sorted(k for k in inp if k.startswith("styles."))]
    latent = fk.get("input_is_latent", False)
    psi = float(fk.get("truncation", 1.0))
    center = inp.get("truncation_latent")
    ws = [model.broadcast(model.truncate(s if latent else model.map(s), psi, center)) for s in styles]
    ws_used = ws[0] if len(ws) == 1 else mix_latents(ws[0], ws[1], int(fk["inject_index"]))
    noise = None
    if "noise" in fk:
        noise = [inp[f"noise.{i}"] for i in range(len(model.convs))]
    out = {"output.0": model.synthesis(ws_used, noise_mode=noise_mode, noise=noise)}
    if fk.get("return_latents"):
        out["output.1"] = ws_used
    return out


def _restoreformer_outputs(model: RestoreFormer, x: Tensor) -> dict[str, Tensor]:
    """The release's ``dec, diff, info, hs = model(x)``, flattened as the fixtures store it."""
    z, hs = model.encode(x)
    z_q, idx, d = model.quantize_codes(z)
    one_hot = torch.nn.functional.one_hot(idx, d.shape[1]).to(d.dtype)
    mean = one_hot.mean(0)
    out = {
        "output.0": model.decode(z_q, hs),
        "output.1": 1.25 * ((z_q - z) ** 2).mean(),  # the codebook loss plus 0.25 x the commitment (equal in value)
        "output.2.0": torch.exp(-(mean * torch.log(mean + 1e-10)).sum()),  # perplexity
        "output.2.1": one_hot,
        "output.2.2": idx[:, None],
        "output.2.3": d,
    }
    out.update({f"output.3.{k}": v for k, v in hs.items()})
    return out


def verify_parity(path: str | Path) -> float:
    """Load a parity fixture into our model, rerun it and return the max |ours - official| over all outputs."""
    meta, sd, inp, expected = _read_parity(Path(path))
    kw = dict(meta["constructor_kwargs"])
    if "channels_used" in meta:  # a small configuration of a class that hard-codes parts of itself (CodeFormer)
        kw["channels_used"] = meta["channels_used"]
    fam, cfg, conv = official_to_ours(meta["official_class"], kw)
    model = fam.build(cfg).eval()
    model.load_state_dict(fam.converters[conv](sd, {}, cfg), strict=True)
    with torch.no_grad():
        got = _run_official_forward(model, meta, inp)
    if set(got) != set(expected):
        raise AssertionError(f"{path}: outputs {sorted(got)} but fixture has {sorted(expected)}")
    return max(float((got[k] - expected[k]).abs().max()) for k in expected)


def verify_manifest(path: str | Path) -> tuple[int, int, list[str]]:
    """Compare an official full-size state_dict layout with ours after conversion.

    Returns:
        (number of manifest keys, number of mismatches, human-readable mismatch descriptions).
    """
    man = json.loads(Path(path).read_text())
    fam, cfg, conv = official_to_ours(man["official_class"], man["constructor_kwargs"])
    with torch.device("meta"):
        model = fam.build(cfg)
        official = {k: torch.empty(shape, dtype=getattr(torch, dt)) for k, shape, dt in man["keys"]}
    problems: list[str] = []
    try:
        converted = fam.converters[conv](official, {}, cfg)
    except (KeyError, ValueError) as exc:
        return len(man["keys"]), len(man["keys"]), [str(exc)]
    ours = model.state_dict()
    for k in sorted(set(ours) - set(converted)):
        problems.append(f"missing in checkpoint: {k}")
    for k in sorted(set(converted) - set(ours)):
        problems.append(f"unexpected in checkpoint: {k}")
    for k in sorted(set(ours) & set(converted)):
        if tuple(ours[k].shape) != tuple(converted[k].shape) or converted[k].dtype != ours[k].dtype:
            problems.append(
                f"{k}: ours {tuple(ours[k].shape)} {ours[k].dtype} vs checkpoint {tuple(converted[k].shape)} {converted[k].dtype}"
            )
    return len(man["keys"]), len(problems), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gfr_core.verify", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="parity .safetensors and manifest .json files")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every manifest mismatch")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    failed = 0
    for p in args.paths:
        path = Path(p)
        try:
            if path.suffix == ".safetensors":
                diff = verify_parity(path)
                ok = diff <= TOLERANCE
                print(f"{p} max_abs_diff={diff:.3g}" + ("" if ok else f"  FAIL (> {TOLERANCE})"))
            elif path.suffix == ".json":
                n, m, problems = verify_manifest(path)
                ok = m == 0
                print(f"{p} keys={n} mismatches={m}" + ("" if ok else "  FAIL"))
                for line in problems if args.verbose else problems[:3]:
                    print(f"    {line}")
            else:
                ok = False
                print(f"{p} error: expected a .safetensors parity file or a .json manifest")
        except Exception as exc:  # report and keep going: one broken fixture must not hide the others
            ok = False
            print(f"{p} error: {type(exc).__name__}: {exc}")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
