"""Redundancy: near-duplicate units by fingerprint, and repeated text by word shingles.

A unit within ``threshold`` cosine of an already kept unit adds nothing; the budget selection
skips it. Pairs come from exact blocked matrix products (``O(n^2 d)``); :mod:`semtoken_rag.dedup`
offers FAISS's. Contextual fingerprints of the *same* sentence differ with their surroundings,
so verbatim and partial repeats (overlapping retrieved chunks) are also caught lexically: a unit
whose word 3-grams are mostly in kept text adds nothing (:func:`unit_shingles`).
"""

from __future__ import annotations

import numpy as np

#: Partners kept per unit, against quadratic pairs in repetitive text (the lexical check remains).
MAX_PARTNERS = 64
#: Rows per matrix product of the exact search.
BLOCK_ROWS = 2048

#: Decimals similarities are rounded to before ranking partners (ties to the lower unit), so
#: exact copies tie and BLAS and FAISS searches agree despite float noise.
PARTNER_DECIMALS = 5
#: Over-connected rows ranked at once (bounds temporaries to a few ``(_RANK_ROWS, n)``).
_RANK_ROWS = 256


def near_duplicate_pairs(
    unit_vectors: np.ndarray,
    threshold: float,
    block: int = BLOCK_ROWS,
    max_partners: int = MAX_PARTNERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric sparse adjacency of units whose cosine similarity exceeds ``threshold``.

    Args:
        unit_vectors: ``(n, d) float32`` L2-normalised unit fingerprints.
        threshold: Cosine above which two units are near-duplicates.
        block: Rows per matrix product.
        max_partners: At most this many partners per unit (the most similar ones).

    Returns:
        ``(indptr, indices)`` in CSR form: the partners of unit ``i`` are
        ``indices[indptr[i]:indptr[i+1]]`` (``int64``, sorted, ``i`` itself excluded).
    """
    n = len(unit_vectors)
    if threshold >= 1.0:  # see :func:`no_pairs`
        return no_pairs(n)
    x = unit_vectors.astype(np.float32, copy=False)
    counts, cols = partners_from(x, 0, threshold, block, max_partners)
    return np.r_[0, np.cumsum(counts)].astype(np.int64), cols


def partners_from(
    x: np.ndarray, start: int, threshold: float, block: int, max_partners: int
) -> tuple[np.ndarray, np.ndarray]:
    """The partners of rows ``[start, n)`` of ``x`` (``(n, d) float32``, L2-normalised).

    ``((n - start,) int64`` counts, ``int64`` columns)`` as :func:`block_partners`. A FAISS search
    resumes here at a multiple of ``block``: only the same products round alike everywhere.
    """
    counts, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for lo in range(start, len(x), block):
        row_counts, row_cols = block_partners(
            x, lo, min(lo + block, len(x)), threshold, max_partners
        )
        counts.append(row_counts)
        cols.append(row_cols)
    return np.concatenate(counts), np.concatenate(cols).astype(np.int64)


def no_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The graph of ``n`` units without a pair: ``(indptr (n + 1,) int64 zeros, (0,) int64)``.

    Used for a threshold of 1 or more: no cosine exceeds 1, but exact copies compute to 1
    within float32 noise, differently per backend.
    """
    return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)


def block_partners(
    x: np.ndarray, lo: int, hi: int, threshold: float, max_partners: int = MAX_PARTNERS
) -> tuple[np.ndarray, np.ndarray]:
    """The partners of rows ``[lo, hi)`` of ``x`` (``(n, d) float32``, L2-normalised).

    As :func:`near_duplicate_pairs`: ``((hi - lo,) int64`` counts, ``int64`` columns row by row,
    sorted)``; one ``(hi - lo, n)`` product."""
    sim = x[lo:hi] @ x.T
    np.fill_diagonal(sim[:, lo:hi], -np.inf)
    hits = sim > threshold
    crowded = np.flatnonzero(hits.sum(axis=1) > max_partners)
    # Cap over-connected units to their max_partners best, a few rows at a time (temporaries);
    # non-partners at -inf so rounding cannot tie one with a partner.
    for at in range(0, len(crowded), _RANK_ROWS):
        rows = crowded[at : at + _RANK_ROWS]
        candidates = np.where(hits[rows], sim[rows], -np.inf)
        hits[rows] &= _top_partners(candidates, max_partners)
    # Diagonal -inf: no self-partner; nonzero is row-major: sorted by row, then column.
    return hits.sum(axis=1).astype(np.int64), np.nonzero(hits)[1].astype(np.int64)


def _top_partners(sim: np.ndarray, k: int) -> np.ndarray:
    """``(r, n) bool``: the ``k`` largest of each row of ``sim`` (``(r, n) float32``, ``k <= n``).

    Compared at :data:`PARTNER_DECIMALS` decimals, ties to the lower column (``argpartition``
    alone breaks ties arbitrarily, unlike the FAISS search). Linear per row.
    """
    r = np.round(sim, PARTNER_DECIMALS)
    kth = -np.partition(-r, k - 1, axis=1)[:, k - 1 : k]  # each row's k-th largest value
    above = r > kth
    tied = r == kth
    room = k - above.sum(axis=1, keepdims=True)  # tied values to take, lowest columns first
    return above | (tied & (np.cumsum(tied, axis=1) <= room))


#: Multipliers of the rolling 3-gram hash (odd 64-bit constants; wrap-around is intended).
_P1 = np.uint64(0x9E3779B97F4A7C15)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)


def unit_shingles(
    word_ids: np.ndarray, unit_starts: np.ndarray, n: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Hashed word n-grams of every unit (n-grams never cross a unit boundary).

    Args:
        word_ids: ``(n_words,) uint64`` id of each normalised word (equal words, equal ids).
        unit_starts: ``(n_units,) int64`` first word of each unit.
        n: Shingle length in words; a unit shorter than ``n`` gets one shingle of all its words.

    Returns:
        CSR ``(indptr (n_units + 1,) int64, hashes (m,) uint64)``.
    """
    n_words = len(word_ids)
    n_units = len(unit_starts)
    if n_units == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    ids = word_ids.astype(np.uint64, copy=False)
    unit_end = np.append(unit_starts[1:], n_words)
    unit_of_word = np.repeat(np.arange(n_units), unit_end - unit_starts)
    pos = np.arange(n_words)
    valid = pos + n <= unit_end[unit_of_word]
    h = np.zeros(n_words, dtype=np.uint64)
    short = np.flatnonzero(unit_end - unit_starts < n)
    with np.errstate(over="ignore"):
        for k in range(n):
            shifted = np.zeros(n_words, dtype=np.uint64)
            shifted[: max(n_words - k, 0)] = ids[k:]  # k >= n_words: nothing to shift in
            h = h * _P1 + shifted * _P2 + np.uint64(k + 1)
        # Units shorter than n: one shingle hashing all their words, at their first word.
        for u in short.tolist():
            acc = np.uint64(unit_end[u] - unit_starts[u])
            for w in ids[unit_starts[u] : unit_end[u]]:
                acc = acc * _P1 + w * _P2
            h[unit_starts[u]] = acc
    valid[unit_starts[short]] = True
    counts = np.bincount(unit_of_word[valid], minlength=n_units)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return indptr, h[valid]


def lexical_suspects(ptr: np.ndarray, values: np.ndarray, threshold: float) -> np.ndarray:
    """``(U,) bool`` the units a lexical skip can involve; every other is kept whatever the order.

    Those with at least ``threshold`` of their shingles found twice among all (only they can
    repeat kept text), and those sharing a shingle with one. Sorts and binary searches only
    (runs on every ``auto`` call; a hash table or ``np.unique`` cost more).

    Args:
        ptr: ``(U+1,) int64`` CSR row pointers of :func:`unit_shingles`.
        values: Its shingle hashes.
        threshold: The lexical skip's fraction, in ``(0, 1]``.
    """
    order = np.argsort(values)
    ordered = values[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():  # the common case: no shingle occurs twice
        return np.zeros(len(ptr) - 1, bool)
    twice = np.zeros(len(values), bool)
    twice[order[1:][same]] = True
    twice[order[:-1][same]] = True
    sizes = np.diff(ptr)
    repeatable = (sizes > 0) & (_count_per_unit(ptr, twice) >= threshold * sizes)
    if not repeatable.any():  # no unit is mostly repeated text
        return repeatable
    hot = np.sort(values[np.repeat(repeatable, sizes)])
    return repeatable | (_count_per_unit(ptr, _found_in(values, hot)) > 0)


def _found_in(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """``(n,) bool`` each of ``values`` found among the sorted ``ordered``."""
    if not len(ordered):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return ordered[at] == values


def _count_per_unit(ptr: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """``(U,) int64`` the true ``flags`` of each CSR row."""
    total = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return total[ptr[1:]] - total[ptr[:-1]]
