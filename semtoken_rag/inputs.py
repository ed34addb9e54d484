"""Validation of what users pass to the engine: typed errors with a message, never a crash
deep inside numpy or torch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from semtoken_rag.errors import InvalidInputError


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


def check_budget(ratio: Any, budget: Any) -> None:
    if ratio is not None and (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float))
        or not 0.0 < float(ratio) <= 1.0
    ):
        raise InvalidInputError(f"ratio must be a number in (0, 1], got {ratio!r}")
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0
    ):
        raise InvalidInputError(f"budget must be a positive int of tokens, got {budget!r}")
