"""The near-duplicate search behind ``SemTokenConfig.dedup_backend``: exact numpy or FAISS.

The core takes the search as a function, so it never imports FAISS.  Both are exact (up to
float32 rounding at the threshold).  ``auto`` uses FAISS from :data:`FAISS_DEDUP_MIN_UNITS` units
on when installed, else numpy; ``faiss`` without FAISS raises :class:`MissingDependencyError`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from semtoken_rag import optional
from semtoken_rag.core.pipeline import DedupSearch
from semtoken_rag.core.redundancy import (
    BLOCK_ROWS,
    MAX_PARTNERS,
    near_duplicate_pairs,
    no_pairs,
    partners_from,
)
from semtoken_rag.errors import MissingDependencyError

logger = logging.getLogger(__name__)

#: From this many units on, the ``auto`` dedup backend uses FAISS (when installed).
FAISS_DEDUP_MIN_UNITS = 4096
#: Rows per FAISS range search (as numpy's blocks): its result holds every pair above threshold.
_FAISS_BLOCK = BLOCK_ROWS
#: Rows of the first range search (doubling up to :data:`_FAISS_BLOCK`): finds crowding early.
_FIRST_BLOCK = 64


def near_duplicates(
    vectors: np.ndarray, threshold: float, max_partners: int = MAX_PARTNERS
) -> tuple[np.ndarray, np.ndarray]:
    """Adjacency of rows whose cosine similarity exceeds ``threshold`` (FAISS, on the CPU).

    Same CSR contract and ``max_partners`` cap (so the same graph) as
    :func:`~semtoken_rag.core.redundancy.near_duplicate_pairs`; from the first block with a row
    over the cap, numpy takes over.

    Args:
        vectors: ``(n, d) float32`` L2-normalised unit fingerprints.
        threshold: Cosine above which two units are near-duplicates.
        max_partners: At most this many partners per unit (the most similar ones).

    Returns:
        ``(indptr (n+1,) int64, indices int64)`` CSR: the partners of each row, sorted.

    Raises:
        MissingDependencyError: FAISS is not installed.
    """
    faiss = optional.faiss("FAISS near-duplicate search")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    if n == 0 or threshold >= 1.0:  # no cosine exceeds 1, whatever FAISS rounds copies to
        return no_pairs(n)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    counts, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    lo, size = 0, _FIRST_BLOCK
    while lo < n:
        hi = min(lo + size, n, lo - lo % BLOCK_ROWS + BLOCK_ROWS)  # within one numpy block
        found = _range_block(index, x, lo, hi, threshold, max_partners)
        if found is None:  # a row over the cap (near-copies, as in logs or table rows)
            return _numpy_from(x, lo, counts, cols, threshold, max_partners)
        counts.append(found[0])
        cols.append(found[1])
        lo, size = hi, min(2 * size, _FAISS_BLOCK)
    return np.r_[0, np.cumsum(np.concatenate(counts))].astype(np.int64), np.concatenate(cols)


def _numpy_from(
    x: np.ndarray,
    lo: int,
    counts: list[np.ndarray],
    cols: list[np.ndarray],
    threshold: float,
    max_partners: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The graph once row ``lo`` starts a crowded block: rows before its numpy block as FAISS
    found them, the rest by :func:`~semtoken_rag.core.redundancy.partners_from` (bit for bit)."""
    start = lo - lo % BLOCK_ROWS
    kept = np.concatenate(counts)[:start]
    rest_counts, rest_cols = partners_from(x, start, threshold, BLOCK_ROWS, max_partners)
    indptr = np.r_[0, np.cumsum(np.concatenate([kept, rest_counts]))].astype(np.int64)
    return indptr, np.concatenate([np.concatenate(cols)[: int(kept.sum())], rest_cols])


def _range_block(
    index: Any, x: np.ndarray, lo: int, hi: int, threshold: float, max_partners: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(counts, columns)`` of rows ``[lo, hi)`` by FAISS's range search, or ``None`` when a row
    has more than ``max_partners`` (ranking them is numpy's rule)."""
    lims, sims, labels = index.range_search(x[lo:hi], float(threshold))
    rows = np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(lims).astype(np.int64))
    keep = (rows != labels) & (sims > threshold)
    rows, found = rows[keep], labels[keep].astype(np.int64)
    row_counts = np.bincount(rows - lo, minlength=hi - lo).astype(np.int64)
    if row_counts.max(initial=0) > max_partners:
        return None
    return row_counts, found[np.lexsort((found, rows))]


def faiss_available() -> bool:
    """Whether FAISS can be imported (``auto`` falls back to numpy when it cannot; asked first,
    as a :class:`MissingDependencyError` from inside a search is a real failure)."""
    try:
        optional.faiss("FAISS near-duplicate search")
    except MissingDependencyError as exc:
        logger.debug("dedup_backend='auto' uses numpy: %s", exc)
        return False
    return True


def _auto_search(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    if len(vectors) >= FAISS_DEDUP_MIN_UNITS and faiss_available():
        return near_duplicates(vectors, threshold)
    return near_duplicate_pairs(vectors, threshold)


def dedup_backend(name: str) -> DedupSearch | None:
    """The search for ``SemTokenConfig.dedup_backend`` (``None`` for ``numpy``: the core's own)."""
    if name == "numpy":
        return None
    if name == "faiss":
        return near_duplicates
    return _auto_search
