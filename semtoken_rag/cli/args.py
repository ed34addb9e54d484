"""Argument types of the command line: every numeric option checked at the boundary.

A bad value (0, negative, NaN, inf, huge, text) is one ``error:`` line and exit status 2 before
anything loads; the message names the option (``ratio must be a number in (0, 1], got 1.5``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Largest value any count option accepts (beyond it nothing sensible fits in memory).
MAX_COUNT = 10**9


def mark_numeric(parse: Callable[[str], Any], *, allow_empty: bool = False) -> Callable[[str], Any]:
    """Mark ``parse`` as a validated numeric type (tests walk every parser for these marks)."""
    parse.semtoken_numeric = True  # type: ignore[attr-defined]
    parse.allow_empty = allow_empty  # type: ignore[attr-defined]
    return parse


def _parse(text: str, kind: type) -> float:
    value = kind(text)  # ValueError -> argparse's "invalid <kind> value: 'text'"
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def integer(what: str, low: int = 1, high: int = MAX_COUNT, noun: str = "") -> Callable[[str], int]:
    """Type for ints in ``[low, high]``; errors name ``what`` and ``noun`` (what is valid)."""

    def parse(text: str) -> int:
        value = int(_parse(text, int))
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{what} must be {noun or f'an int in [{low}, {high}]'}, got {text}"
            )
        return value

    parse.__name__ = "int"
    return mark_numeric(parse)


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
    return mark_numeric(parse)


ratio = number("ratio", 0.0, 1.0, low_open=True)
budget = integer("budget", noun="a positive int of tokens")


def ratio_or_auto(text: str) -> float | str:
    """``auto`` (the engine chooses the budget per call) or a ratio in (0, 1]."""
    if text.strip() == "auto":
        return "auto"
    try:
        return ratio(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"ratio must be a number in (0, 1] or 'auto', got {text}"
        ) from None


ratio_or_auto.__name__ = "float"
mark_numeric(ratio_or_auto)


def number_list(
    what: str,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    integers: bool = False,
    words: dict[str, float] | None = None,
    max_items: int = 32,
    allow_empty: bool = False,
    keep_text: bool = False,
) -> Callable[[str], Any]:
    """Type for comma-separated numbers in ``[low, high]`` (``(low, high]`` with ``low_open``), at
    most ``max_items``; blank items skipped.

    Args:
        what: The option's name in the message.
        integers: Items are ints (``1.5`` is refused).
        words: Items accepted as words, and their values (``{"auto": -1.0}``).
        allow_empty: ``""`` is accepted (an empty tuple).
        keep_text: Return the checked text itself (parsed later), else the values as a tuple.
    """
    kind = "int" if integers else "number"
    left = "(" if low_open else "["
    also = "".join(f" or {w!r}" for w in words or {})
    rule = f"comma-separated {kind}s in {left}{low:g}, {high:g}]{also}"

    def parse(text: str) -> Any:
        items = [x.strip() for x in text.split(",") if x.strip()]
        if not items and not allow_empty:
            raise argparse.ArgumentTypeError(f"{what} must be {rule}, got {text!r}")
        if len(items) > max_items:
            raise argparse.ArgumentTypeError(
                f"{what} takes at most {max_items} values, got {len(items)}"
            )
        values: list[float] = []
        for item in items:
            if words and item in words:
                values.append(words[item])
                continue
            try:
                value = _parse(item, int if integers else float)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{what} must be {rule}, got {text!r}") from None
            if value > high or value < low or (low_open and value == low):
                raise argparse.ArgumentTypeError(f"{what} must be {rule}, got {item}")
            values.append(int(value) if integers else value)
        return text if keep_text else tuple(values)

    parse.__name__ = "ints" if integers else "floats"
    return mark_numeric(parse, allow_empty=allow_empty)


def check_output(path: str | Path, what: str, *, folder: bool) -> Path:
    """Refuse, before anything runs, an output ``path`` that cannot be written (``folder``: one to
    create, else a file): a folder (or a file's folder) that is a file, or a file that is a folder.

    Raises:
        InvalidInputError: naming the option ``what`` (``--out``) and the path.
    """
    from semtoken_rag.errors import InvalidInputError

    target = Path(path)
    if not str(path).strip():
        raise InvalidInputError(f"{what} must be a path, got {str(path)!r}")
    if folder and target.exists() and not target.is_dir():
        raise InvalidInputError(f"{what} {target} is a file, not a folder")
    if not folder and target.is_dir():
        raise InvalidInputError(f"{what} {target} is a folder, not a file")
    start = target if folder else target.parent
    anchor = next((p for p in (start, *start.parents) if p.exists()), Path("."))
    if not anchor.is_dir():
        raise InvalidInputError(f"{what} {target}: {anchor} is a file, not a folder")
    return target
