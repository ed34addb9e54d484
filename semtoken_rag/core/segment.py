"""Words and units (sentences) of a text, as integer arrays of character offsets.

Words are the atoms of rendering: a kept piece starts and ends on a word boundary. Units are
what the budget keeps or drops: sentences by default (see DESIGN.md), capped at ``max_words`` so
a run-on sentence or unpunctuated document keeps fine granularity. Regexes plus numpy.
"""

from __future__ import annotations

import re
import string
import zlib
from itertools import chain

import numpy as np

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
#: Longest word: longer non-space runs (a URL, base64) are hard-wrapped into several words.
WORD_MAX_CHARS = 64
#: A word is one CJK character, or a run of other non-space characters.
_WORD_RE = re.compile(rf"[{_CJK}]|[^\s{_CJK}]{{1,{WORD_MAX_CHARS}}}")
#: Terminal punctuation (plus closing quotes/brackets) followed by whitespace or the end.
_TERMINAL_RE = re.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s|$)|[。！？]+")
#: A line break that starts a new unit: a blank line, or a newline before a capital, a digit or
#: a bullet (lists, headings). ``\r`` counts as line-end space (Windows text breaks alike).
_BREAK_RE = re.compile(r"\n[ \t\r]*(?:\n|(?=[A-Z0-9\-*•#>|\[(]))")
_ABBREV_RE = re.compile(
    r"(?:^|\s)(?:[A-Z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Col|Capt|Lt|Sgt|vs|etc|e\.g|i\.e|No|Fig|"
    r"Inc|Ltd|Co|Corp|U\.S|a\.m|p\.m)\.$"
)
_CLAUSE_END = (",", ";", ":", "—", "–")


def find_words(text: str) -> np.ndarray:
    """Character spans of the words of ``text``.

    Args:
        text: Any string (empty allowed).

    Returns:
        ``(n_words, 2) int64`` array of ``[start, end)`` offsets, sorted, non-overlapping.
    """
    # map/chain/fromiter keep the per-word loop in C (hot path).
    flat = chain.from_iterable(map(re.Match.span, _WORD_RE.finditer(text)))
    return np.fromiter(flat, dtype=np.int64).reshape(-1, 2)


def wrapped_words(word_spans: np.ndarray) -> np.ndarray:
    """Indices of the words on either side of a hard wrap (a run cut at ``WORD_MAX_CHARS``).

    A piece ending or starting there splits a tokenizer word (its cost is not its words' sum).

    Args:
        word_spans: ``(n_words, 2) int64`` from :func:`find_words`.

    Returns:
        ``(k,) int64`` sorted word indices.
    """
    full = word_spans[:-1, 1] - word_spans[:-1, 0] == WORD_MAX_CHARS
    left = np.flatnonzero(full & (word_spans[1:, 0] == word_spans[:-1, 1]))
    return np.union1d(left, left + 1).astype(np.int64)


def sentence_ends(text: str, word_spans: np.ndarray) -> np.ndarray:
    """Boolean mask over words: ``True`` where a sentence (unit) ends after that word.

    Args:
        text: The text the words were found in.
        word_spans: ``(n_words, 2) int64`` from :func:`find_words`.

    Returns:
        ``(n_words,) bool``; the last word always ends a unit.
    """
    n = len(word_spans)
    ends = np.zeros(n, dtype=bool)
    if n == 0:
        return ends
    # The last word starting at or before each terminal character, then each line break.
    term = [m.end() - 1 for m in _TERMINAL_RE.finditer(text)]
    idx = np.searchsorted(word_spans[:, 0], np.asarray(term, dtype=np.int64), side="right") - 1
    ends[idx[idx >= 0]] = True
    # "Mr. Smith", "e.g. this": a period after a known abbreviation ends no sentence.
    for i in np.flatnonzero(ends):
        s, e = word_spans[i]
        if text[e - 1] == "." and _ABBREV_RE.search(text, max(0, s - 1), e):
            ends[i] = False
    brk = [m.start() for m in _BREAK_RE.finditer(text)]
    idx = np.searchsorted(word_spans[:, 0], np.asarray(brk, dtype=np.int64), side="right") - 1
    ends[idx[idx >= 0]] = True
    ends[-1] = True
    return ends


def _split_long(text: str, word_spans: np.ndarray, lo: int, hi: int, max_words: int) -> list[int]:
    """Cut points inside the word range ``[lo, hi)`` so no piece exceeds ``max_words``.

    Cuts prefer a clause end (comma, semicolon, colon, dash) near the ideal position.
    """
    n = hi - lo
    pieces = -(-n // max_words)
    size = n / pieces
    window = max(1, max_words // 6)
    cuts: list[int] = []
    prev = lo
    for k in range(1, pieces):
        # The rest after a cut must still fit in the pieces that remain (``room`` words).
        ideal, room = lo + round(k * size), (pieces - k) * max_words
        near = (c for d in range(window + 1) for c in (ideal - d, ideal + d))
        fits = (c for c in near if prev < c < hi and c - prev <= max_words and hi - c <= room)
        best = next((c for c in fits if text[word_spans[c - 1, 1] - 1] in _CLAUSE_END), ideal)
        prev = min(max(best, prev + 1, hi - room), prev + max_words)
        cuts.append(prev)
    return cuts


def find_units(
    text: str, word_spans: np.ndarray, max_words: int, unit: str = "sentence"
) -> np.ndarray:
    """First word index of every unit.

    Args:
        text: The text.
        word_spans: ``(n_words, 2) int64`` from :func:`find_words`.
        max_words: Longest unit in words; longer sentences are split.
        unit: ``"sentence"`` or ``"word"`` (every word its own unit).

    Returns:
        ``(n_units,) int64`` strictly increasing word indices, starting with 0 (empty if there
        are no words).  Unit ``i`` covers words ``[starts[i], starts[i+1])``.
    """
    n = len(word_spans)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if unit == "word":
        return np.arange(n, dtype=np.int64)
    ends = sentence_ends(text, word_spans)
    starts = np.concatenate([[0], np.flatnonzero(ends[:-1]) + 1]).astype(np.int64)
    lengths = np.diff(np.append(starts, n))
    long = np.flatnonzero(lengths > max_words)
    extra: list[int] = []
    for i in long:
        lo = int(starts[i])
        extra.extend(_split_long(text, word_spans, lo, lo + int(lengths[i]), max_words))
    return np.unique(np.concatenate([starts, np.asarray(extra, dtype=np.int64)]))


_STRIP = string.punctuation + "“”‘’«»…—–"


def word_ids(text: str, word_spans: np.ndarray) -> np.ndarray:
    """A stable id per word, equal for words equal up to case and surrounding punctuation.

    Finds repeated text; CRC-32 keeps ids identical across processes (``hash`` is salted).

    Returns:
        ``(n_words,) uint64``.
    """
    ids = [
        zlib.crc32(text[s:e].strip(_STRIP).lower().encode("utf-8", "surrogatepass"))
        for s, e in word_spans.tolist()
    ]
    return np.asarray(ids, dtype=np.uint64)
