"""Rendering: kept units back to text, with the character offsets of every kept piece."""

from __future__ import annotations

import numpy as np


def kept_word_ranges(
    kept: np.ndarray,
    unit_starts: np.ndarray,
    n_words: int,
    partial_unit: int = -1,
    partial_words: int = 0,
) -> np.ndarray:
    """Maximal runs of kept words.

    Args:
        kept: ``(n_units,) bool`` units kept in full.
        unit_starts: ``(n_units,) int64`` first word of each unit.
        n_words: Words in the text.
        partial_unit: A unit of which only the leading ``partial_words`` words are kept, or -1.

    Returns:
        ``(k, 2) int64`` ``[first_word, end_word)`` ranges, sorted and non-adjacent.
    """
    # +1 where a kept piece starts, -1 where it ends; a word is kept where the running sum is > 0.
    delta = np.zeros(n_words + 1, dtype=np.int64)
    idx = np.flatnonzero(kept)
    np.add.at(delta, unit_starts[idx], 1)
    np.add.at(delta, np.append(unit_starts[1:], n_words)[idx], -1)
    if partial_unit >= 0 and partial_words > 0:
        delta[unit_starts[partial_unit]] += 1
        delta[unit_starts[partial_unit] + partial_words] -= 1
    edges = np.diff((np.cumsum(delta) > 0).astype(np.int8), prepend=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return np.stack([starts, ends], axis=1).astype(np.int64)


def render(
    text: str, word_spans: np.ndarray, word_ranges: np.ndarray, separator: str
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Text of the kept word ranges, joined by ``separator``.

    Each piece is ``text[start:end]`` verbatim, starting and ending on whole words.

    Args:
        text: The original text.
        word_spans: ``(n_words, 2) int64`` word character spans.
        word_ranges: ``(k, 2) int64`` from :func:`kept_word_ranges`.
        separator: Put between two pieces where text was removed.

    Returns:
        ``(compressed_text, offsets)`` with ``offsets[i] == (start, end)`` of piece ``i``.
    """
    if len(word_ranges) == 0:
        return "", ()
    starts = word_spans[word_ranges[:, 0], 0].tolist()
    ends = word_spans[word_ranges[:, 1] - 1, 1].tolist()
    offsets = tuple(zip(starts, ends))
    return separator.join(text[s:e] for s, e in offsets), offsets
