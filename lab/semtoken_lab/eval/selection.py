"""Unit selection under a token budget, shared by the sentence-level baselines.

Why shared: random drop, the embedding filter and Selective Context differ only in how they
*score* units; they must spend the budget identically (greedy by score, original order kept,
leftover filled with the leading words of the best unit that did not fit) so that every method
reaches the same achieved ratio and the comparison is about the scores alone.  This is the same
budget rule as SemToken's (``fill_partial``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from semtoken_rag.core.segment import find_units, find_words

#: Leftovers smaller than this many tokens are not filled with a partial unit (as SemToken).
MIN_FILL_TOKENS = 6


class WordCoster(Protocol):
    """What selection needs from a token counter (``semtoken_rag.tokens.TokenCounter``)."""

    def count(self, text: str) -> int: ...

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Units:
    """The units (sentences or phrases) of a list of chunks, flattened.

    Attributes:
        chunks: The chunk texts.
        word_spans: Per chunk, ``(n_words, 2) int64`` character spans.
        word_costs: Per chunk, ``(n_words,) int64`` reader tokens per word.
        chunk: ``(n_units,) int64`` chunk index of each unit.
        word_lo: ``(n_units,) int64`` first word (within its chunk) of each unit.
        word_hi: ``(n_units,) int64`` one past the last word of each unit.
        costs: ``(n_units,) int64`` reader tokens of each unit.
    """

    chunks: tuple[str, ...]
    word_spans: tuple[np.ndarray, ...]
    word_costs: tuple[np.ndarray, ...]
    chunk: np.ndarray
    word_lo: np.ndarray
    word_hi: np.ndarray
    costs: np.ndarray

    def __len__(self) -> int:
        return len(self.chunk)

    def text(self, i: int) -> str:
        """Verbatim text of unit ``i``."""
        c, lo, hi = int(self.chunk[i]), int(self.word_lo[i]), int(self.word_hi[i])
        spans = self.word_spans[c]
        return self.chunks[c][spans[lo, 0] : spans[hi - 1, 1]]


def segment_units(chunks: Sequence[str], counter: WordCoster, max_words: int = 48) -> Units:
    """Split chunks into units with :func:`semtoken_rag.core.segment.find_units` and cost them."""
    spans, costs, ch, lo, hi, uc = [], [], [], [], [], []
    for ci, text in enumerate(chunks):
        ws = find_words(text)
        wc = counter.word_costs(text, ws) if len(ws) else np.zeros(0, np.int64)
        starts = find_units(text, ws, max_words)
        ends = np.append(starts[1:], len(ws))
        csum = np.concatenate([[0], np.cumsum(wc)])
        spans.append(ws)
        costs.append(np.asarray(wc, dtype=np.int64))
        ch.extend([ci] * len(starts))
        lo.extend(starts.tolist())
        hi.extend(ends.tolist())
        uc.extend((csum[ends] - csum[starts]).tolist())
    return Units(
        chunks=tuple(chunks),
        word_spans=tuple(spans),
        word_costs=tuple(costs),
        chunk=np.asarray(ch, dtype=np.int64),
        word_lo=np.asarray(lo, dtype=np.int64),
        word_hi=np.asarray(hi, dtype=np.int64),
        costs=np.asarray(uc, dtype=np.int64),
    )


def select(units: Units, scores: np.ndarray, budget: int) -> list[tuple[int, int, int]]:
    """Greedy selection by score under ``budget`` tokens.

    Args:
        units: From :func:`segment_units`.
        scores: ``(n_units,) float`` higher is kept first (ties: earlier unit first).
        budget: Reader tokens to spend.

    Returns:
        Kept word ranges ``(chunk, word_lo, word_hi)``, in original order.
    """
    order = np.lexsort((np.arange(len(units)), -np.asarray(scores, dtype=np.float64)))
    kept = np.zeros(len(units), dtype=bool)
    used = 0
    for i in order:
        if used + int(units.costs[i]) <= budget:
            kept[i] = True
            used += int(units.costs[i])
    ranges = [
        (int(units.chunk[i]), int(units.word_lo[i]), int(units.word_hi[i]))
        for i in np.flatnonzero(kept)
    ]
    left = budget - used
    if left >= MIN_FILL_TOKENS:
        for i in order:
            if kept[i]:
                continue
            c, lo = int(units.chunk[i]), int(units.word_lo[i])
            wc = units.word_costs[c][lo : int(units.word_hi[i])]
            n = int(np.searchsorted(np.cumsum(wc), left, side="right"))
            if n > 0:
                ranges.append((c, lo, lo + n))
            break
    return sorted(ranges)


def render(units: Units, ranges: Sequence[tuple[int, int, int]], chunk_sep: str = "\n\n") -> str:
    """Kept word ranges back to text: contiguous ranges verbatim, gaps as one space."""
    per_chunk: dict[int, list[tuple[int, int]]] = {}
    for c, lo, hi in sorted(ranges):
        rs = per_chunk.setdefault(c, [])
        if rs and rs[-1][1] == lo:
            rs[-1] = (rs[-1][0], hi)
        else:
            rs.append((lo, hi))
    parts = []
    for c in sorted(per_chunk):
        ws, text = units.word_spans[c], units.chunks[c]
        parts.append(" ".join(text[ws[lo, 0] : ws[hi - 1, 1]] for lo, hi in per_chunk[c]))
    return chunk_sep.join(p for p in parts if p)


def select_text(units: Units, scores: np.ndarray, budget: int) -> str:
    """:func:`select` then :func:`render`."""
    return render(units, select(units, scores, budget))
