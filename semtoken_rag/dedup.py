"""The near-duplicate search behind ``SemTokenConfig.dedup_backend``: exact numpy or FAISS.

The core takes the search as a function, so it never imports FAISS; this is where the engine
picks exact numpy products for small contexts and a FAISS range search for large ones.

:func:`semtoken_rag.core.redundancy.near_duplicate_pairs` does blocked dense products
(``O(n^2 d)``, exact).  :func:`near_duplicates` gives the same CSR contract via
``IndexFlatIP.range_search`` (exact as well, multithreaded BLAS inside FAISS).  Pairs can differ
from the numpy version only for similarities within float32 rounding (~1e-6) of the threshold.

Backends:

* ``numpy`` — always the core's exact numpy search.
* ``faiss`` — always FAISS; without it, a :class:`~semtoken_rag.errors.MissingDependencyError`
  naming the install command.
* ``auto`` — numpy below :data:`FAISS_DEDUP_MIN_UNITS` units, FAISS at or above it when FAISS is
  installed, numpy otherwise (the fallback never raises).
"""

from __future__ import annotations

import logging

import numpy as np

from semtoken_rag import optional
from semtoken_rag.core.pipeline import DedupSearch
from semtoken_rag.core.redundancy import near_duplicate_pairs
from semtoken_rag.errors import MissingDependencyError

logger = logging.getLogger(__name__)

#: From this many units on, the ``auto`` dedup backend uses FAISS (when installed).
FAISS_DEDUP_MIN_UNITS = 4096


def near_duplicates(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric sparse adjacency of rows whose cosine similarity exceeds ``threshold`` (FAISS).

    Same contract as :func:`semtoken_rag.core.redundancy.near_duplicate_pairs`; the range search
    runs on the CPU (faiss-gpu has no flat range search).

    Args:
        vectors: ``(n, d) float32`` L2-normalised.
        threshold: Cosine above which two rows are near-duplicates.

    Returns:
        ``(indptr (n+1,) int64, indices int64)`` CSR; partners of ``i`` are
        ``indices[indptr[i]:indptr[i+1]]``, sorted, ``i`` itself excluded.

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
    rows, cols = rows[keep], cols[keep]
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols[order]


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
    """The near-duplicate search for ``SemTokenConfig.dedup_backend`` (FAISS imported lazily).

    Args:
        name: ``numpy``, ``faiss`` or ``auto`` (see the module docstring).

    Returns:
        The search, or ``None`` for ``numpy`` (the core's own exact search).
    """
    if name == "numpy":
        return None
    if name == "faiss":
        return near_duplicates
    return _auto_search
