"""Argument types shared by the ``gfr`` commands: a value out of range is refused at parse time, in one line
that names the range (argparse adds the flag)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["number", "whole"]


def whole(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An ``int`` option in ``[lo, hi]`` (``hi`` None: no upper bound)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            span = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    convert.__name__ = "int"
    return convert


def number(lo: float, hi: float) -> Callable[[str], float]:
    """A finite ``float`` option in ``[lo, hi]``."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and lo <= value <= hi):
            raise argparse.ArgumentTypeError(f"must be between {lo:g} and {hi:g}, got {text}")
        return value

    convert.__name__ = "float"
    return convert
