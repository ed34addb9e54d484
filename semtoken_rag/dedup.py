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

import numpy as np

from semtoken_rag import optional
from semtoken_rag.core.pipeline import DedupSearch
from semtoken_rag.core.redundancy import MAX_PARTNERS, PARTNER_DECIMALS, near_duplicate_pairs
from semtoken_rag.errors import MissingDependencyError

logger = logging.getLogger(__name__)

#: From this many units on, the ``auto`` dedup backend uses FAISS (when installed).
FAISS_DEDUP_MIN_UNITS = 4096


def near_duplicates(
    vectors: np.ndarray, threshold: float, max_partners: int = MAX_PARTNERS
) -> tuple[np.ndarray, np.ndarray]:
    """Adjacency of rows whose cosine similarity exceeds ``threshold`` (FAISS).

    Same CSR contract as :func:`semtoken_rag.core.redundancy.near_duplicate_pairs`, its
    ``max_partners`` cap included (each row keeps its most similar partners, compared at
    :data:`~semtoken_rag.core.redundancy.PARTNER_DECIMALS` decimals, ties to the lower index):
    without the cap, a context past :data:`FAISS_DEDUP_MIN_UNITS` units with many near-copies
    would get a different graph, and so a different compression, than numpy.  The range search
    runs on the CPU (faiss-gpu has no flat range search).

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
    if n == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, sims, labels = index.range_search(x, float(threshold))
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(lims).astype(np.int64))
    cols = labels.astype(np.int64)
    keep = (rows != cols) & (sims > threshold)
    rows, cols, sims = rows[keep], cols[keep], sims[keep]
    # Rank each row's partners as numpy does (similarity at PARTNER_DECIMALS, ties to the lower
    # column) and keep the top max_partners.
    by_sim = np.lexsort((cols, -np.round(sims, PARTNER_DECIMALS), rows))
    rows, cols = rows[by_sim], cols[by_sim]
    row_start = np.searchsorted(rows, rows, side="left")
    top = np.arange(len(rows)) - row_start < max_partners
    rows, cols = rows[top], cols[top]
    order = np.lexsort((cols, rows))
    return np.append(0, np.cumsum(np.bincount(rows, minlength=n))).astype(np.int64), cols[order]


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
