"""Argument types of the command line: every numeric option checked at the boundary.

argparse calls these while parsing, so a bad value (0, a negative, NaN, inf, a huge number,
text) is one ``error:`` line and exit status 2, before anything is loaded or written.  Text that
is not a number gets argparse's own wording (``invalid float value: 'abc'``); a number out of
range names the option and what it must be (``ratio must be a number in (0, 1], got 1.5``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

#: Largest value any count option accepts (beyond it nothing sensible fits in memory).
MAX_COUNT = 10**9


def _parse(text: str, kind: type) -> float:
    value = kind(text)  # ValueError -> argparse's "invalid <kind> value: 'text'"
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def integer(what: str, low: int = 1, high: int = MAX_COUNT, noun: str = "") -> Callable[[str], int]:
    """A type accepting integers in ``[low, high]``.

    Args:
        what: The option's name in the message.
        low: Smallest value.
        high: Largest value.
        noun: What a valid value is, in words (default: ``an int in [low, high]``).
    """

    def parse(text: str) -> int:
        value = int(_parse(text, int))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what} must be {noun or f'an int in [{low}, {high}]'}, got {text}"
            )
        return value

    parse.__name__ = "int"
    return parse


def number(what: str, low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """A type accepting finite floats in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        value = _parse(text, float)
        if value > high or value < low or (low_open and value == low):
            left = "(" if low_open else "["
            raise argparse.ArgumentTypeError(
                f"{what} must be a number in {left}{low:g}, {high:g}], got {text}"
            )
        return value

    parse.__name__ = "float"
    return parse


#: A compression ratio: ``(0, 1]``.
ratio = number("ratio", 0.0, 1.0, low_open=True)
#: A token budget.
budget = integer("budget", noun="a positive int of tokens")
