"""Words of a stored document: normalisation, packing, shingle hashes, winnowing, verification.

Words are :func:`~semtoken_rag.core.segment.find_words` runs of non-space characters (so
whitespace a splitter adds or removes changes nothing), compared after NFKC.  Shingle hashes are
of case-folded words, so a collision or a case difference can only propose a candidate: every
served word is verified.  Winnowing (Schleimer, Wilkerson and Aiken, 2003) keeps the smallest
hash of each window of :data:`WINNOW_WINDOW` shingles: any shared text of at least
``WINNOW_WINDOW + SHINGLE_WORDS - 1`` words holds a kept shingle, while only about
``2 / (WINNOW_WINDOW + 1)`` of them are stored.  See docs/store.md, "How a chunk is found".
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Sequence
from functools import partial

import numpy as np

#: Words per shingle.
SHINGLE_WORDS = 4
#: Winnowing window, in shingles.
WINNOW_WINDOW = 16
#: Separator of packed words: ``\x1f`` is whitespace to Python's ``re``, so never inside a word.
_SEP = "\x1f"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_FINAL = np.uint64(0xBF58476D1CE4E5B9)
_to_bytes = partial(str.encode, encoding="utf-8", errors="surrogatepass")


def normalise(words: Sequence[str]) -> list[str]:
    """NFKC form of each word (what is stored and compared)."""
    return [unicodedata.normalize("NFKC", w) for w in words]


def pack(words: Sequence[str]) -> bytes:
    """Normalised words -> zlib-compressed bytes (see :func:`unpack`)."""
    return zlib.compress(_SEP.join(words).encode("utf-8", "surrogatepass"), 6)


def unpack(data: bytes, n_words: int) -> list[str]:
    """Inverse of :func:`pack`.

    Raises:
        ValueError: the bytes do not hold ``n_words`` words (damage).
    """
    try:
        text = zlib.decompress(data).decode("utf-8", "surrogatepass")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable word payload: {exc}") from exc
    words = text.split(_SEP) if n_words else []
    if len(words) != n_words:
        raise ValueError(f"word payload holds {len(words)} words, expected {n_words}")
    return words


def shingle_hashes(words: Sequence[str]) -> np.ndarray:
    """``(max(0, n - SHINGLE_WORDS + 1),) int32`` hash of each run of ``SHINGLE_WORDS`` NFKC
    words (case is folded here)."""
    n = len(words) - SHINGLE_WORDS + 1
    if n <= 0:
        return np.zeros(0, np.int32)
    # map keeps the per-word loop in C (a lookup hashes every word of every chunk it locates).
    folded = map(_to_bytes, map(str.casefold, words))
    h = np.fromiter(map(zlib.crc32, folded), dtype=np.uint64, count=len(words))
    acc = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(SHINGLE_WORDS):
            acc = (acc ^ h[j : j + n]) * _MIX
        acc ^= acc >> np.uint64(31)
        acc *= _FINAL
        acc ^= acc >> np.uint64(29)
    return (acc >> np.uint64(32)).astype(np.uint32).view(np.int32)


def winnow(hashes: np.ndarray) -> np.ndarray:
    """Sorted positions ``(m,) int64`` of the shingles winnowing keeps: the rightmost smallest
    hash of each window of :data:`WINNOW_WINDOW` shingles (all of them for shorter texts)."""
    n = len(hashes)
    if n <= WINNOW_WINDOW:
        return np.arange(n, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(hashes, WINNOW_WINDOW)[:, ::-1]
    picks = WINNOW_WINDOW - 1 - np.argmin(windows, axis=1) + np.arange(len(windows))
    return np.unique(picks).astype(np.int64)


def same_words(stored: Sequence[str], chunk: Sequence[str]) -> bool:
    """Whether a chunk's words are exactly the stored words it would be served (both NFKC).

    Interior words must be equal; the chunk's first word may be the end of the stored word and
    its last the start of one (a splitter that cut inside a word): a fragment is served the
    vector of the whole word.
    """
    n = len(chunk)
    if n == 0 or len(stored) != n:
        return False
    if n == 1:
        return chunk[0] in stored[0]
    return (
        stored[0].endswith(chunk[0])
        and stored[-1].startswith(chunk[-1])
        and list(stored[1:-1]) == list(chunk[1:-1])
    )
