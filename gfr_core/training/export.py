"""Shipping trained runs: the embedded models (fp16 safetensors + JSON cards), compact resume states, the model card."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..hub import load_model, save_checkpoint
from ..models.family import config_to_dict
from .common import save_state
from .config import PriorConfig, RestorerConfig

__all__ = ["export_embedded", "export_resume_state", "write_model_card"]


def export_embedded(
    *,
    prior_run: str,
    restorer_run: str,
    noprior_run: str | None,
    weights_dir: str | Path,
    metrics: dict[str, Any] | None = None,
) -> list[Path]:
    """Copy trained runs into the package as fp16 safetensors plus registry cards (JSON).

    Writes ``embedded-prior``, ``embedded`` and (if given) ``embedded-noprior``. The cards record the data,
    its terms, the training command and record, the hardware and the evaluation metrics.
    """
    import hashlib

    wdir = Path(weights_dir)
    wdir.mkdir(parents=True, exist_ok=True)
    terms = (
        "Trained on Labeled Faces in the Wild (UMass Amherst, research use; 11,098 re-aligned train photos). "
        "The weights inherit those terms: research, non-commercial use."
    )
    written = []
    entries = [
        (
            "embedded-prior",
            prior_run,
            "prior.safetensors",
            "stylegan2",
            "prior",
            "StyleGAN2 face prior trained by gfr on real faces (64 px, offline default prior)",
        ),
        (
            "embedded",
            restorer_run,
            "restorer.safetensors",
            "gfpgan",
            "restore",
            "GFPGAN-style restorer on the frozen embedded prior (64 px, offline default restorer)",
        ),
    ]
    if noprior_run:
        entries.append(
            (
                "embedded-noprior",
                noprior_run,
                "restorer.safetensors",
                "gfpgan",
                "restore",
                "Prior ablation: same architecture trained without the prior (random, trainable decoder)",
            )
        )
    for name, run, fname, arch, task, desc in entries:
        model = load_model(Path(run) / fname)
        record = json.loads((Path(run) / "training.json").read_text())
        config = config_to_dict(model.config)  # the card lists what the file's own metadata holds
        dst = wdir / f"{name}.safetensors"
        save_checkpoint(
            dst, model, arch=arch, dtype=torch.float16, metadata={"gfr_crop_zoom": str(record["config"]["zoom"])}
        )
        data = dst.read_bytes()
        card = dict(
            name=name,
            arch=arch,
            config=config,
            task=task,
            filename=f"weights/{dst.name}",
            converter="native",
            license=terms,
            paper="gfr embedded model; architectures: Karras et al. CVPR 2020 (StyleGAN2), Wang et al. CVPR 2021 (GFPGAN)",
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            crop_zoom=float(record["config"]["zoom"]),
            trust=0.0,  # protected until measured: gfr eval-photos DIR --model NAME --trust 0,0.25,0.5,1
            description=desc,
            extras=dict(
                training=record,
                metrics=(metrics or {}).get(name),
                stored_dtype="float16",
                command=_command_for(name, record),
            ),
        )
        (wdir / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
        written += [dst, wdir / f"{name}.json"]
    return written


def _command_for(name: str, record: dict[str, Any]) -> str:
    """The ``gfr train`` command line of a run's last chunk: its data, out and every non-default setting."""
    c = record["config"]
    kind, cls = ("prior", PriorConfig) if name == "embedded-prior" else ("restorer", RestorerConfig)
    defaults = {f.name: f.default for f in fields(cls) if f.name not in ("data", "out", "arch")}
    flags = [
        f"--{k.replace('_', '-')} {str(v).lower() if isinstance(v, bool) else v}"
        for k, v in c.items()
        if k in defaults and v != defaults[k]
    ]
    return (
        f"gfr train {kind} --data {c['data']} --out {c['out']} {' '.join(flags)} (resumed until step {record['step']})"
    )


def export_resume_state(run: str | Path, dst: str | Path) -> Path:
    """Write a compact copy of a run's ``state.pt`` (floating tensors as bfloat16) for committing.

    bfloat16 keeps float32's exponent range, so Adam's second moments survive; resuming casts everything
    back to float32 (``load_state_dict`` copies into the float32 modules and optimizers). The rounding
    (~0.4 % relative) is a small perturbation of the weights, of the order of a few optimizer steps.
    """

    def compact(x: Any) -> Any:
        if isinstance(x, Tensor) and x.is_floating_point() and x.dim() > 0:
            return x.to(torch.bfloat16)
        if isinstance(x, dict):
            return {k: compact(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(compact(v) for v in x)
        return x

    state = torch.load(Path(run) / "state.pt", map_location="cpu", weights_only=True)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_state(dst, compact(state))
    return dst


def write_model_card(weights_dir: str | Path) -> Path:
    """Write ``MODEL_CARD.md`` and a sample grid for the embedded models from their JSON cards."""
    from PIL import Image

    from .. import analysis as an

    wdir = Path(weights_dir)
    cards = {p.stem: json.loads(p.read_text()) for p in sorted(wdir.glob("*.json"))}
    G = load_model(wdir / "embedded-prior.safetensors")
    grid = an.tile(an.synthesize(G, an.sample_latents(G, list(range(32)), psi=0.7)), 8)
    Image.fromarray(grid).save(wdir / "embedded-prior-samples.png")
    lines = [
        "# Embedded models",
        "",
        "Small models trained by this project's own code on real faces, bundled so that gfr works offline.",
        "",
    ]
    for name, c in cards.items():
        tr = c["extras"]["training"]
        lines += [
            f"## {name}",
            "",
            c["description"],
            "",
            f"* Architecture: `{c['arch']}` {json.dumps(c['config'])}, alignment zoom {c['crop_zoom']}",
            f"* File: `{c['filename']}` ({c['size_bytes']:,} bytes, {c['extras']['stored_dtype']}), sha256 `{c['sha256']}`",
            f"* Data and terms: {c['license']}",
            f"* Training: `{c['extras']['command']}`",
            f"* Steps {tr['step']}, images seen {tr['images_seen']:,}, {tr['train_seconds'] / 60:.0f} min on {tr['hardware']}, torch {tr['torch']}",
            f"* Last losses: {json.dumps({k: round(v, 4) for k, v in tr['last_losses'].items()})}",
        ]
        m = c["extras"].get("metrics")
        if m:
            lines.append(f"* Evaluation: {m}")
        if c.get("task") == "restore":
            t = c["extras"].get("trust_measurement")
            how = f" ({t['chosen']}; `{t['command']}`)" if t else " (not measured: protected)"
            lines.append(f"* Paste trust: {c.get('trust', 0.0):g}{how}")
        lines.append("")
    lines += ["## Samples of embedded-prior (ψ = 0.7, seeds 0-31)", "", "![samples](embedded-prior-samples.png)", ""]
    out = wdir / "MODEL_CARD.md"
    out.write_text("\n".join(lines))
    return out
