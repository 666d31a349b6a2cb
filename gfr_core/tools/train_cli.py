"""``gfr train prior|restorer|export``: the training commands (also under ``torchrun``, see
:mod:`gfr_core.training.distributed`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..jobs import UserError

__all__ = ["add_train_parser"]


def _dataclass_args(p: argparse.ArgumentParser, cls, skip: tuple[str, ...] = ()) -> None:
    """Expose a config dataclass's fields as --options (defaults and comments from the dataclass)."""
    import dataclasses
    import typing

    from ..training.config import check_field

    def checked(name: str, typ: type):
        """A converter that refuses, at parse time, a value outside the field's range (the range named)."""

        def convert(text: str):
            try:
                value = typ(text)
            except ValueError:
                kind = "a whole number" if typ is int else "a number"
                raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
            try:
                check_field(name, value)
            except ValueError as exc:  # "--batch must be ...": argparse names the flag itself
                raise argparse.ArgumentTypeError("must " + str(exc).partition(" must ")[2]) from None
            return value

        convert.__name__ = typ.__name__  # argparse names the type in its messages
        return convert

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.name in ("data", "out"):
            continue
        t = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        if t is bool:
            p.add_argument(flag, type=lambda v: v.lower() in ("1", "true", "yes"), default=f.default, metavar="BOOL")
        elif f.default is not dataclasses.MISSING and not isinstance(f.default, (dict, list)):
            typ = int if t in (int, int | None) else float if t is float else str
            conv = typ if typ is str else checked(f.name, typ)
            p.add_argument(flag, type=conv, default=f.default, help=f"(default {f.default})")


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ..training import PriorConfig, RestorerConfig, train_prior, train_restorer

    cls = PriorConfig if args.what == "prior" else RestorerConfig
    kw = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    kw.update(data=args.data, out=args.out)
    try:
        path = train_prior(PriorConfig(**kw)) if args.what == "prior" else train_restorer(RestorerConfig(**kw))
    except ValueError as exc:  # the trainers raise ValueError for settings, data and states that do not fit
        raise UserError(str(exc)) from exc
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 speaks for the run
        return 0
    chunk = json.loads((Path(args.out) / "training.json").read_text()).get("last_chunk", {})
    speed = (
        f" ({chunk['samples_per_second']:.1f} samples/s over {chunk['processes']} process(es), "
        f"{chunk['samples']} samples in {chunk['seconds']:.0f} s)"
        if chunk.get("samples")
        else ""
    )
    print(f"saved {path}{speed}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import json

    from ..training import export_embedded

    metrics = json.loads(Path(args.metrics).read_text()) if args.metrics else None
    for p in export_embedded(
        prior_run=args.prior,
        restorer_run=args.restorer,
        noprior_run=args.noprior,
        weights_dir=args.weights_dir,
        metrics=metrics,
    ):
        print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB)")
    from ..training import write_model_card

    print(f"wrote {write_model_card(args.weights_dir)}")
    if args.resume_dir:
        import shutil

        from ..training import export_resume_state

        for run in filter(None, (args.prior, args.restorer, args.noprior)):
            name = Path(run).resolve().name
            p = export_resume_state(run, Path(args.resume_dir) / f"{name}-state.pt")
            shutil.copyfile(Path(run) / "training.json", Path(args.resume_dir) / f"{name}-training.json")
            print(f"wrote {p} ({p.stat().st_size / 1e6:.2f} MB, bfloat16 resume state)")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """The ``train`` subcommands' options (a config dataclass's fields become flags)."""
    from ..training import PriorConfig, RestorerConfig

    train = sub.add_parser("train", help="train the embedded prior or restorer (resumable chunks)")
    tsub = train.add_subparsers(dest="what", required=True)
    for what, cls, text in (
        ("prior", PriorConfig, "StyleGAN2 prior"),
        ("restorer", RestorerConfig, "GFPGAN-style restorer"),
    ):
        p = tsub.add_parser(what, help=f"train the {text}")
        p.add_argument("--data", required=True, help="folder with *-train.tar, a tar file, or an image folder")
        p.add_argument("--out", required=True, help="run folder; an existing state.pt is resumed")
        _dataclass_args(p, cls, skip=("arch",))
        p.set_defaults(func=_cmd_train)
    p = tsub.add_parser("export", help="ship trained runs as the embedded models (fp16 safetensors + cards)")
    p.add_argument("--prior", required=True, help="prior run folder")
    p.add_argument("--restorer", required=True, help="restorer run folder")
    p.add_argument("--noprior", help="no-prior ablation run folder")
    p.add_argument("--metrics", help="JSON file of metrics per model name, recorded in the cards")
    p.add_argument("--weights-dir", default=str(Path(__file__).resolve().parents[1] / "weights"))
    p.add_argument(
        "--resume-dir", help="also write compact (bfloat16) copies of the runs' state.pt here, to resume later"
    )
    p.set_defaults(func=_cmd_export)
