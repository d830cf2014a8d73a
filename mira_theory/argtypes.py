"""Argument types for the command lines: numbers with a range, checked by argparse.

A bad value is a usage error (exit 2) whose message says what was expected and what was found.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(kind: type = float, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
           high_open: bool = False, finite: bool = False, expected: str = "") -> Callable[[str], float | int]:
    """A parser of ``kind`` (int or float) values in a range; ``expected`` overrides the wording."""
    if not expected:
        noun = "an integer" if kind is int else "a number"
        parts = []
        if low > -math.inf:
            parts.append(f"{'>' if low_open else '≥'} {low:g}")
        if high < math.inf:
            parts.append(f"{'<' if high_open else '≤'} {high:g}")
        expected = noun + (" " + " and ".join(parts) if parts else "") + (" (finite)" if finite else "")

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, found {text!r}") from None
        ok = not (isinstance(value, float) and math.isnan(value))
        ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok or (finite and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, found {text!r}")
        return value

    return parse


nonnegative = number(float, 0.0)
positive_int = number(int, 1)
nonnegative_int = number(int, 0)
positive_finite = number(float, 0.0, low_open=True, finite=True)
level = number(float, 0.5, 1.0, high_open=True, expected="a confidence level in [0.5, 1)")
