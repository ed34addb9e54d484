"""Validation of what users pass to the engine: typed errors with a message, never a crash
deep inside numpy, torch or tokenizers.

Text the tokenizers library cannot take: a Python ``str`` may hold lone surrogates
(``"\\ud800"``; text extracted from broken PDFs, or command-line bytes decoded with
``surrogateescape``), which the Rust tokenizers reject with an untyped ``TypeError``.  The
documented behaviour: the engine computes on a copy where each surrogate is replaced by U+FFFD
(one code point for one, so every character offset is unchanged), and renders the kept pieces
from the text *as given*, so offsets and pieces stay verbatim.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from typing import Any

from semtoken_rag.errors import InvalidInputError

_SURROGATE = re.compile("[\ud800-\udfff]")


def model_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (same length, same offsets).

    Returns ``text`` itself (no copy) when it has none, the common case.
    """
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def check_chunks(chunks: Any) -> list[str]:
    if chunks is None:
        raise InvalidInputError("chunks must be a string or a sequence of strings, got None")
    if isinstance(chunks, str):
        return [chunks]
    if isinstance(chunks, (bytes, bytearray)):
        raise InvalidInputError("chunks must be str, not bytes: decode them first")
    if isinstance(chunks, Mapping):
        raise InvalidInputError("chunks must be a sequence of strings, not a mapping")
    try:
        items = list(chunks)
    except TypeError:
        raise InvalidInputError(
            f"chunks must be a string or a sequence of strings, got {type(chunks).__name__}"
        ) from None
    for i, c in enumerate(items):
        if not isinstance(c, str):
            raise InvalidInputError(f"chunk {i} is {type(c).__name__}, expected str")
    return items


def check_query(query: Any) -> str | None:
    if query is None:
        return None
    if not isinstance(query, str):
        raise InvalidInputError(f"query must be a string or None, got {type(query).__name__}")
    # An empty or blank query carries no information: treated as no query (documented).
    return query if query.strip() else None


def check_budget(ratio: Any, budget: Any) -> tuple[float | None, int | None]:
    """Validate a per-call ratio and budget; numpy scalars are accepted and made plain.

    A budget larger than the context is valid (everything fits); it is clamped where used.

    Returns:
        ``(ratio, budget)`` as ``float`` / ``int`` (or ``None``).
    """
    if ratio is not None:
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, numbers.Real)
            or math.isnan(float(ratio))
            or not 0.0 < float(ratio) <= 1.0
        ):
            raise InvalidInputError(f"ratio must be a number in (0, 1], got {ratio!r}")
        ratio = float(ratio)
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget <= 0:
            raise InvalidInputError(f"budget must be a positive int of tokens, got {budget!r}")
        budget = int(budget)
    return ratio, budget
