"""The near-duplicate search behind ``SemTokenConfig.dedup_backend``: exact numpy or FAISS.

The core takes the search as a function, so it never imports FAISS; this is where the engine
picks exact numpy products for small contexts and a FAISS range search for large ones (exact as
well; pairs can differ only for similarities within float32 rounding, ~1e-6, of the threshold).
``auto`` uses FAISS from :data:`FAISS_DEDUP_MIN_UNITS` units on when it is installed, numpy
otherwise (the fallback never raises); ``faiss`` without FAISS raises a
:class:`~semtoken_rag.errors.MissingDependencyError` naming the install command.
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
#: Rows per FAISS range search (as the numpy search's blocks): its result holds every pair above
#: the threshold, ``rows * n`` of them for near-copies (8,000 log lines: 3.4 GB in one search).
_FAISS_BLOCK = BLOCK_ROWS
#: Rows of the first range search; each next one doubles up to :data:`_FAISS_BLOCK`, so a
#: context of near-copies is found crowded after a small search (64 rows of 50,000 copies: 3.2M
#: pairs, where 2,048 rows held 100M, about 3 GB).
_FIRST_BLOCK = 64


def near_duplicates(
    vectors: np.ndarray, threshold: float, max_partners: int = MAX_PARTNERS
) -> tuple[np.ndarray, np.ndarray]:
    """Adjacency of rows whose cosine similarity exceeds ``threshold`` (FAISS).

    Same CSR contract as :func:`semtoken_rag.core.redundancy.near_duplicate_pairs`, its
    ``max_partners`` cap included: without the cap, a context past
    :data:`FAISS_DEDUP_MIN_UNITS` units with many near-copies would get a different graph, and
    so a different compression, than numpy.  The range search runs in blocks of rows (its
    result holds every pair above the threshold); from the first block with a row over the cap
    on, numpy's own search takes over (:func:`_numpy_from`).  On the CPU (faiss-gpu has no
    flat range search).

    Args:
        vectors: ``(n, d) float32`` L2-normalised unit fingerprints.
        threshold: Cosine above which two units are near-duplicates.
        max_partners: At most this many partners per unit (the most similar ones).

    Returns:
        ``(indptr (n+1,) int64, indices int64)`` CSR: the partners of each row, sorted.

    Raises:
        MissingDependencyError: FAISS is not installed (the message names the install command).
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
    """The graph once row ``lo`` starts a crowded block: the rows before the numpy block that
    holds ``lo`` as FAISS found them, the rest by numpy's own search (the same products,
    :func:`~semtoken_rag.core.redundancy.partners_from`), so crowded rows keep numpy's
    partners bit for bit, and numpy is faster there than sorting the block's pairs."""
    start = lo - lo % BLOCK_ROWS
    kept = np.concatenate(counts)[:start]
    rest_counts, rest_cols = partners_from(x, start, threshold, BLOCK_ROWS, max_partners)
    indptr = np.r_[0, np.cumsum(np.concatenate([kept, rest_counts]))].astype(np.int64)
    return indptr, np.concatenate([np.concatenate(cols)[: int(kept.sum())], rest_cols])


def _range_block(
    index: Any, x: np.ndarray, lo: int, hi: int, threshold: float, max_partners: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The partners of rows ``[lo, hi)`` by FAISS's range search (``(counts, columns)`` as
    :func:`~semtoken_rag.core.redundancy.block_partners`), or ``None`` when a row has more
    than ``max_partners`` (ranking them is numpy's rule)."""
    lims, sims, labels = index.range_search(x[lo:hi], float(threshold))
    rows = np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(lims).astype(np.int64))
    keep = (rows != labels) & (sims > threshold)
    rows, found = rows[keep], labels[keep].astype(np.int64)
    row_counts = np.bincount(rows - lo, minlength=hi - lo).astype(np.int64)
    if row_counts.max(initial=0) > max_partners:
        return None
    return row_counts, found[np.lexsort((found, rows))]


def faiss_available() -> bool:
    """Whether FAISS can be imported (``auto`` falls back to numpy when it cannot).

    Why not catch the error of the search itself: a :class:`MissingDependencyError` raised from
    inside a search would be indistinguishable from a real failure there; asking first keeps
    the fallback to the one case it is documented for.
    """
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
    """The near-duplicate search for ``SemTokenConfig.dedup_backend`` (FAISS imported lazily);
    ``None`` for ``numpy`` (the core's own exact search)."""
    if name == "numpy":
        return None
    if name == "faiss":
        return near_duplicates
    return _auto_search
