"""FAISS-backed near-duplicate search for large contexts (drop-in for the core's numpy version).

:func:`semtoken_rag.core.redundancy.near_duplicate_pairs` does blocked dense products
(``O(n^2 d)``, exact).  :func:`near_duplicates` gives the same CSR contract via
``IndexFlatIP.range_search`` (exact as well, multithreaded BLAS inside FAISS), and
:class:`SpanIndex` holds the span vectors *already kept* in a context so each candidate asks
"how close is my nearest kept span?" incrementally (on a GPU when faiss-gpu and CUDA exist:
:mod:`semtoken_rag.store.gpu`).
Pairs can differ from the numpy version only for similarities within float32 rounding
(~1e-6) of the threshold.
"""

from __future__ import annotations

import numpy as np

from semtoken_rag import optional
from semtoken_rag.store.gpu import GpuFlatIndex


def near_duplicates(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric sparse adjacency of rows whose cosine similarity exceeds ``threshold``.

    Same contract as :func:`semtoken_rag.core.redundancy.near_duplicate_pairs` (range search
    runs on the CPU: faiss-gpu has no flat range search).

    Args:
        vectors: ``(n, d) float32`` L2-normalised.
        threshold: Cosine above which two rows are near-duplicates.

    Returns:
        ``(indptr (n+1,) int64, indices int64)`` CSR; partners of ``i`` are
        ``indices[indptr[i]:indptr[i+1]]``, sorted, ``i`` itself excluded.
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


class SpanIndex:
    """Vectors of the spans kept so far in one context; nearest-kept-span queries.

    Args:
        dim: Vector dimension.
        use_gpu: ``auto``/``never``/``always`` (see
            :func:`~semtoken_rag.store.gpu.resolve_use_gpu`); on a GPU the copy there is
            extended incrementally by :meth:`add`.
    """

    def __init__(self, dim: int, *, use_gpu: str = "never") -> None:
        self.dim = dim
        self.use_gpu = use_gpu
        self._index = GpuFlatIndex(dim, use_gpu=use_gpu)

    def __len__(self) -> int:
        return self._index.ntotal

    def add(self, vectors: np.ndarray) -> None:
        """Add kept span vectors ``(m, dim) float32`` (L2-normalised); ids continue from len."""
        self._index.add(vectors)

    def nearest(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of, and id of, the nearest kept span for each row of ``vectors``.

        Returns:
            ``(sims (m,) float32, ids (m,) int64)``; ``-inf`` / ``-1`` while nothing is kept.
        """
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(self) == 0:
            return np.full(len(q), -np.inf, np.float32), np.full(len(q), -1, np.int64)
        sims, ids = self._index.search(q, 1)
        return np.asarray(sims[:, 0], np.float32), np.asarray(ids[:, 0], np.int64)

    def is_redundant(self, vectors: np.ndarray, threshold: float) -> np.ndarray:
        """``(m,) bool``: rows whose nearest kept span has cosine above ``threshold``."""
        sims, _ = self.nearest(vectors)
        return sims > threshold
