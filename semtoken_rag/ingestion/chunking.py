"""Word-window chunking for ingestion (pure).

Chunks are verbatim slices of the text (first word's first character to last word's last), so a
retriever using these settings returns chunks with the same fingerprint keys."""

from __future__ import annotations

import numbers

from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import InvalidInputError


def chunk_words(text: str, size: int, overlap: int = 0) -> list[str]:
    """Split ``text`` into windows of ``size`` words (> 0) sharing ``overlap`` (0 <= it < size).

    Returns:
        Chunk texts in order (none without words); the last may be shorter, and none lies
        entirely inside the previous one.

    Raises:
        InvalidInputError: ``text`` is not a str, ``size``/``overlap`` not ints or out of range.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, got {type(text).__name__}")
    for name, value in (("size", size), ("overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidInputError(f"chunk {name} must be an int, got {value!r:.40}")
    size, overlap = int(size), int(overlap)
    if size <= 0:
        raise InvalidInputError(f"chunk size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise InvalidInputError(f"chunk overlap must be in [0, {size}), got {overlap}")
    spans = find_words(text)
    n = len(spans)
    # A window starts every size - overlap words; the last one is the first to reach word n - 1
    # (a start at or past n - overlap would lie inside the window before it).
    starts = range(0, max(n - overlap, 1), size - overlap) if n else range(0)
    return [text[int(spans[s, 0]) : int(spans[min(s + size, n) - 1, 1])] for s in starts]
