"""Checks of the arguments a :class:`~semtoken_lab.reader.LocalReader` call takes.

Why a module of its own: a bad count (``max_new_tokens="3"``, ``batch_size=0``) or a string
where a list of examples belongs must fail at the call with the value named, not as a
``TypeError`` from a comparison, a ``range()`` error or a tensor reshape deep in the model, and
never be read silently (``1.5`` tokens, a string's characters as examples).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from semtoken_rag.errors import InvalidInputError


def check_count(name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is an integer ``>= 1`` (numpy's too; not a bool).

    Raises:
        InvalidInputError: anything else, the value named.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"{name} must be an int >= 1, got {value!r:.60}")
    return int(value)


def check_examples(name: str, values: Any) -> None:
    """Refuse one string (or bytes) where a sequence of examples belongs.

    Raises:
        InvalidInputError: ``values`` is a ``str``/``bytes`` or not a sequence.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InvalidInputError(
            f"{name} must be a sequence with one entry per example, got {values!r:.60}"
        )


def check_batch(
    questions: Sequence[str],
    contexts: Sequence[str],
    options: Sequence[Sequence[str] | None] | None,
    max_new_tokens: int,
    batch_size: int,
) -> list[Sequence[str] | None]:
    """The options of each example, after checking the batch's arguments agree.

    Raises:
        InvalidInputError: lengths differ, a limit is not an int >= 1, or one string was
            given where a sequence of examples belongs.
    """
    check_examples("questions", questions)
    check_examples("contexts", contexts)
    if len(questions) != len(contexts):
        raise InvalidInputError("questions and contexts must have the same length")
    check_count("max_new_tokens", max_new_tokens)
    check_count("batch_size", batch_size)
    opts: list[Sequence[str] | None] = [None] * len(questions)
    if options is not None:
        check_examples("options", options)
        opts = list(options)
    if len(opts) != len(questions):
        raise InvalidInputError("options must have one entry per question")
    return opts
