"""``gfr`` command line: model registry, downloads, and (in later subcommands) restoration."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..hub.registry import DEFAULT_MODEL
from .options import number, whole
from .restore_cli import UserError, add_restore_parser, collect_inputs
from .train_cli import add_train_parser

__all__ = ["main"]

log = logging.getLogger(__name__)


def _cmd_models(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    import torch

    from ..hub import build_model, get_card, is_cached, list_models

    rows = [("name", "task", "res", "params", "file", "cached", "source", "license")]
    for name in list_models():
        card = get_card(name)
        with torch.device("meta"):
            n = sum(p.numel() for p in build_model(card).parameters())
        total = (card.size_bytes or 0) + int(card.extras.get("bin_size_bytes", 0))  # an ncnn pair: graph + weights
        size = f"{total / 1e6:.1f} MB" if total else "?"
        if card.embedded:
            where = (
                "package" if ":" not in card.filename else f"pip {card.extras.get('pip', card.filename.split(':')[0])}"
            )
        else:
            hosts = [urlsplit(u).netloc for u in card.urls]
            where = " > ".join(([f"hf:{card.source_repo}"] if card.repo_id else []) + hosts)
        res = {"upsample": "x4", "detect": "any"}.get(card.task, f"{card.face_size}px")
        cached = "yes" if is_cached(card) else "no"
        rows.append((name, card.task, res, f"{n / 1e6:.1f}M", size, cached, where, card.license))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    if args.verbose_sources:
        for name in list_models():
            card = get_card(name)
            digest = (
                f"sha256 {card.sha256[:12]}… pinned"
                if card.sha256
                else "sha256 not published: recorded on first download, then enforced"
            )
            print(f"{name}: " + (" | ".join(card.sources) if card.sources else card.filename) + f"  [{digest}]")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from ..hub import forget_digest, get_card, load_model, resolve_file

    for name in args.names:
        card = get_card(name)
        if args.refresh and forget_digest(card):
            print(f"{name}: forgot the recorded sha256; the file is checked again by loading it", file=sys.stderr)
        path = resolve_file(card, suggest_download=False)
        load_model(name)  # a file is trusted (its digest recorded) only once it loads
        print(f"{name}: {path}")
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from ..hub import build_model, get_card, list_models, load_model, model_card
    from ..hub.onnx import example_input, export_onnx, onnx_max_abs_diff

    out = Path(args.output)
    # checked before any work: an export of a 512 px restorer takes a while
    if out.is_dir():
        raise UserError(f"-o {out} is a folder; give a file name such as {out / (Path(args.model).stem + '.onnx')}")
    if out.suffix.lower() != ".onnx":
        raise UserError(f"-o {out}: give a file name ending in .onnx (nothing else is overwritten)")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise UserError(f"-o {out}: {parent} is a file, not a folder")
    if out.exists() and not args.overwrite:
        raise UserError(f"-o {out} exists; add --overwrite to replace it, or give another name")
    model = None
    if args.random_weights:  # the architecture of a registered card with seeded random weights (no download)
        if args.model not in list_models():
            raise UserError(f"--random-weights needs a registered model name, got {args.model}")
        model = build_model(get_card(args.model), seed=0).eval()
    try:
        path = export_onnx(args.model, out, model=model, overwrite=args.overwrite)
    except FileExistsError:  # written by someone else during the export
        raise UserError(f"-o {out} exists now; add --overwrite to replace it, or give another name") from None
    except OSError as exc:  # permission denied, disk full: nothing is left half-written
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    net = model if model is not None else load_model(args.model)
    card = model_card(args.model)
    diff = onnx_max_abs_diff(path, net, example_input(net, card.task if card else "restore", batch=3, seed=1))
    print(f"{path}: onnx.checker ok; max abs diff vs PyTorch {diff:.2e} (batch 3)")
    return 0 if diff <= 1e-4 else 1


_NO_SHARP_FACE = "no face found in the sharp photos (MTCNN, score >= 0.95); give photos with clear faces"


def _oracle_spec(text: str) -> str:
    from ..metrics.oracle import parse_oracle

    try:
        parse_oracle(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cmd_eval_photos(args: argparse.Namespace) -> int:
    from ..io.image import read_image
    from ..metrics import photo
    from ..restore import FaceRestorer

    inputs = collect_inputs(args.photos)
    upsampler = None if args.face_upsampler == "none" else args.face_upsampler
    restorer = FaceRestorer.from_pretrained(args.model, device=args.device, upsampler=upsampler)
    if args.trust is not None:  # how the card's trust was measured: the same photos at another trust
        restorer.composition = dataclasses.replace(restorer.composition, trust=args.trust)
    if args.oracle:
        return _oracle_report(args, restorer, inputs)
    scores = photo.evaluate_photos(
        restorer, [read_image(f).rgb for f, _ in inputs], [str(rel) for _, rel in inputs], fidelity=args.fidelity
    )
    faces = [f for s in scores for f in s.faces]
    if not faces:
        raise UserError(_NO_SHARP_FACE)
    print(photo.to_json(scores) if args.json else photo.report(scores))
    worst = min(faces, key=lambda f: f.sharpness_ratio)
    print(
        f"{len(faces)} faces: sharpness x{worst.sharpness_ratio:.2f} at worst; dE median "
        f"{sorted(f.delta_e for f in faces)[len(faces) // 2]:.2f}, worst {max(f.delta_e for f in faces):.2f}; "
        f"PSNR vs bicubic {min(f.psnr_gain for f in faces):+.2f} dB at worst, "
        f"{sum(f.psnr_gain for f in faces) / len(faces):+.2f} dB mean",
        file=sys.stderr,
    )
    return 0


def _oracle_report(args: argparse.Namespace, restorer: object, inputs: list) -> int:
    from ..io.image import read_image
    from ..metrics import oracle

    photos, names = [read_image(f).rgb for f, _ in inputs], [str(rel) for _, rel in inputs]
    for spec in args.oracle:
        size, zoom = oracle.parse_oracle(spec)
        faces = oracle.oracle_faces(photos, names, face_size=size, zoom=zoom, model=restorer, device=args.device)
        if not faces:
            raise UserError(_NO_SHARP_FACE)
        title = f"Perfect {size} px restorer (zoom {zoom:g}) vs bicubic; model: {args.model}. Face PSNR gain, dB"
        print(oracle.to_json(faces) if args.json else oracle.oracle_report(faces, title=title))
        gains = [f.gfr_gain for f in faces]
        print(
            f"{len(faces)} faces, perfect {size} px restorer: gfr {sum(gains) / len(gains):+.2f} dB mean "
            f"({min(gains):+.2f} at worst), official-style paste "
            f"{sum(f.official_gain for f in faces) / len(faces):+.2f} dB; {args.model} "
            f"{sum(f.model_gain for f in faces) / len(faces):+.2f} dB",
            file=sys.stderr,
        )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import math

    from ..metrics import evaluate

    models = [args.model] + [b for b in args.baseline_model if b != args.model]
    skip = set(args.skip)
    res = evaluate(
        models,
        args.data,
        preset=args.degradation,
        seed=args.seed,
        limit=args.limit,
        split=args.split,
        device=args.device,
        lpips="lpips" not in skip,
        fid="fid" not in skip,
        identity="identity" not in skip,
    )
    if args.json:
        print(res.to_json(per_image=not args.summary))
    else:
        print(f"{res.num_images} faces from {res.data} ({args.split}), degradation '{res.preset}', seed {res.seed}")
        print(res.table())
        m, b = res.methods[args.model], res.methods["bicubic"]
        print(f"{args.model} vs bicubic: {m['psnr'] - b['psnr']:+.2f} dB PSNR, {m['lmd'] - b['lmd']:+.3f} px LMD")
        if res.fid_weights == "inception":
            print(
                "FID used torchvision's ImageNet Inception (pytorch-fid's weights not found): compare methods, not published FID"
            )
        for metric, why in res.unavailable.items():
            print(f"not measured: {metric}: {why}")
    return 0 if all(math.isfinite(v["psnr"]) or v["psnr"] == math.inf for v in res.methods.values()) else 1


def _cmd_bench(args: argparse.Namespace) -> int:

    from .bench import format_report, run

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.engine:
        from .bench_engine import bench_engine, format_engine_report

        report = bench_engine((args.model or ["embedded"])[0], photos=8 if args.short else 40, engine=args.engine)
        print(json.dumps(report, indent=1) if args.json else format_engine_report(report))
        return 0
    if args.video:
        from .bench_video import bench_video, format_video_report

        models = args.model or ["embedded"]
        reports = [bench_video(m, frames=24 if args.short else 96, device=args.device) for m in models]
        print(json.dumps(reports, indent=1) if args.json else "\n\n".join(map(format_video_report, reports)))
        return 0
    report = run(
        args.model or ["gfpgan-v1.4"],
        device=args.device,
        batch=args.batch,
        repeats=args.repeats,
        short=args.short,
        compile=args.compile,
        variants=args.variants,
        memory=args.memory,
        upsampler=args.upsampler,
        backend=args.backend,
    )
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option said in one line (and where to find the options) instead of the usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} -h` lists the options)\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gfr", description="GAN-prior face restoration.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"gfr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("models", help="list registered models (task, resolution, size, cached, source, license)")
    p.add_argument(
        "--sources", dest="verbose_sources", action="store_true", help="also list every source URL, in order"
    )
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("download", help="fetch checkpoints from the Hub into the local cache")
    p.add_argument("names", nargs="+", help="model names from `gfr models`")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="forget the sha256 recorded for a file without a published one, then check the file again",
    )
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("export-onnx", help="export a restorer or the upsampler to ONNX, checked, with its parity")
    p.add_argument("model", help="model name from `gfr models`, or a checkpoint path")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="the .onnx file to write (its folders are made; an existing file is kept unless --overwrite)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    p.add_argument(
        "--random-weights", action="store_true", help="seeded random weights of the architecture (no download)"
    )
    p.set_defaults(func=_cmd_export_onnx)

    add_restore_parser(sub)

    p = sub.add_parser("eval", help="degrade faces with a fixed seed, restore, report PSNR / SSIM / LMD vs baselines")
    p.add_argument("--model", default=DEFAULT_MODEL, help="restorer name or checkpoint")
    p.add_argument("--data", required=True, help="folder with *-val.tar, a tar file, or an image folder")
    p.add_argument("--split", default="val", help="which *-SPLIT.tar files to use from a folder (default val)")
    p.add_argument("--degradation", default="gfpgan", help="degradation preset (gfpgan, mild, severe)")
    p.add_argument("--seed", type=whole(0), default=0, help="degradation seed (default 0)")
    p.add_argument("--limit", type=whole(1), default=None, help="evaluate only the first N faces")
    p.add_argument(
        "--baseline-model",
        action="append",
        default=[],
        help="also evaluate this model (repeatable), e.g. embedded-noprior",
    )
    p.add_argument("--json", action="store_true", help="print JSON (with per-image metrics)")
    p.add_argument("--summary", action="store_true", help="with --json: leave out per-image metrics")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["lpips", "fid", "identity"],
        help="do not measure this metric even if its weights are on disk (repeatable)",
    )
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser(
        "eval-photos", help="degrade sharp photos (x2 / x4, JPEG, blur), restore, compare faces with the originals"
    )
    p.add_argument("photos", nargs="+", help="sharp photos (files or folders), e.g. ../shared/data/photos-pd")
    p.add_argument("--model", default=DEFAULT_MODEL, help="restorer name or checkpoint")
    p.add_argument("--fidelity", type=number(0, 1), default=0.0, help="0 full restoration ... 1 the input")
    p.add_argument(
        "--trust",
        type=number(0, 1),
        default=None,
        help="how far the paste believes the model (default: its card's; 0 protects the photo, 1 replaces faces)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--face-upsampler",
        choices=["none", "realesrgan"],
        default="none",
        help="score the pipeline with Real-ESRGAN's face detail (slow on CPU; the background stays bicubic)",
    )
    p.add_argument(
        "--oracle",
        action="append",
        metavar="S[:ZOOM]",
        type=_oracle_spec,
        help="the pipeline's ceiling: a perfect S px restorer (crop zoom ZOOM) through gfr's paste and the "
        "official-style paste, beside bicubic and --model (repeatable, e.g. --oracle 512 --oracle 64:1.3)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    p.set_defaults(func=_cmd_eval_photos)

    p = sub.add_parser("bench", help="official execution style vs the optimized path: latency, throughput, accuracy")
    p.add_argument(
        "--model",
        action="append",
        help="registered model whose architecture is timed (repeatable; default gfpgan-v1.4)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch", type=whole(1, 256), default=4, help="faces per forward in the optimized path")
    p.add_argument("--repeats", type=whole(1, 10_000), default=5, help="timed runs after warm-up")
    p.add_argument("--short", action="store_true", help="quick run at 64 px (CI)")
    p.add_argument("--compile", action="store_true", help="also torch.compile the optimized path")
    p.add_argument("--variants", action="store_true", help="also time each optimization on its own, with its error")
    p.add_argument(
        "--memory",
        action="store_true",
        help="also measure peak RSS restoring a 24 MP photo with 4 faces (fresh process)",
    )
    p.add_argument(
        "--backend",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="onnxruntime: also time each model's ONNX Runtime path beside PyTorch eager and optimized, with ratios",
    )
    p.add_argument(
        "--upsampler",
        action="store_true",
        help="also time Real-ESRGAN x4plus in the pipeline: per face (face detail) and per input MP (background)",
    )
    p.add_argument(
        "--video",
        action="store_true",
        help="instead: frames per second restoring a 640x360 clip with one face, decode to encode "
        "(--model default embedded; 96 frames, 24 with --short)",
    )
    p.add_argument(
        "--engine",
        choices=["ray"],
        default=None,
        help="instead: photos per second of gfr restore over a folder, local engine vs this one "
        "(--model default embedded; 40 photos, 8 with --short)",
    )
    p.add_argument("--threads", type=whole(0, 1024), default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="print the full JSON report")
    p.set_defaults(func=_cmd_bench)

    add_train_parser(sub)
    return parser


def _check_device(name: str) -> None:
    """Raise a one-line :class:`UserError` for a device this machine cannot run (before any work starts)."""
    import torch

    if name == "auto":
        return
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is available on this machine; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); use cuda:0")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: gfr runs on cpu or cuda")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gfr`` console script."""
    from ..hub import (
        ChecksumError,
        ModelUnavailableError,
        UnknownModelError,
        UnmatchedKeysError,
        UnsafeCheckpointError,
    )

    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if getattr(args, "device", None) is not None:
            _check_device(args.device)
        return func(args)
    except (
        UserError,
        UnknownModelError,
        UnmatchedKeysError,
        ModelUnavailableError,
        ChecksumError,
        UnsafeCheckpointError,
        ValueError,  # bad arguments or a bad model file (config out of range, wrong task): one line
    ) as exc:
        if args.verbose and isinstance(exc, ValueError):
            raise
        print(f"gfr: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gfr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
