"""``gfr`` command line: model registry, downloads, and (in later subcommands) restoration."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

__all__ = ["main"]


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit code 2."""


def _cmd_models(args: argparse.Namespace) -> int:
    import torch

    from .hub import build_model, get_card, is_cached, list_models

    rows = [("name", "arch", "task", "params", "file", "cached", "license")]
    for name in list_models():
        card = get_card(name)
        with torch.device("meta"):
            n = sum(p.numel() for p in build_model(card).parameters())
        size = f"{card.size_bytes / 1e6:.1f} MB" if card.size_bytes else "?"
        rows.append((name, card.arch, card.task, f"{n / 1e6:.1f}M", size, "yes" if is_cached(card) else "no", card.license))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .hub import get_card, resolve_file

    for name in args.names:
        path = resolve_file(get_card(name))
        print(f"{name}: {path}")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gfr", description="GAN-prior face restoration.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("models", help="list registered models (arch, size, license, cached or not)")
    p.set_defaults(func=_cmd_models)
    p = sub.add_parser("download", help="fetch checkpoints from the Hub into the local cache")
    p.add_argument("names", nargs="+", help="model names from `gfr models`")
    p.set_defaults(func=_cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gfr`` console script."""
    from .hub import ChecksumError, ModelUnavailableError, UnknownModelError, UnsafeCheckpointError

    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (UserError, UnknownModelError, ModelUnavailableError, ChecksumError, UnsafeCheckpointError) as exc:
        print(f"gfr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gfr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
