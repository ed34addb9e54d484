"""Near-duplicate pairs among unit fingerprints (the hard redundancy skip).

Retrieved chunks overlap, and documents repeat themselves.  A unit whose fingerprint is within
``threshold`` cosine of an already kept unit adds nothing; the budget selection skips it.  The
pairs are found with blocked matrix products (exact; ``O(n^2 d)`` flops in blocks of
``block`` rows, a few ms for thousands of units).  The FAISS-backed store offers the same
search over spans kept in earlier calls.
"""

from __future__ import annotations

import numpy as np


def near_duplicate_pairs(
    unit_vectors: np.ndarray, threshold: float, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric sparse adjacency of units whose cosine similarity exceeds ``threshold``.

    Args:
        unit_vectors: ``(n, d) float32`` L2-normalised unit fingerprints.
        threshold: Cosine above which two units are near-duplicates.
        block: Rows per matrix product.

    Returns:
        ``(indptr, indices)`` in CSR form: the partners of unit ``i`` are
        ``indices[indptr[i]:indptr[i+1]]`` (``int64``, sorted, ``i`` itself excluded).
    """
    n = len(unit_vectors)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    x = unit_vectors.astype(np.float32, copy=False)
    for lo in range(0, n, block):
        sim = x[lo : lo + block] @ x.T
        r, c = np.nonzero(sim > threshold)
        r = r + lo
        keep = r != c
        rows.append(r[keep])
        cols.append(c[keep])
    if not rows:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    r_all = np.concatenate(rows).astype(np.int64)
    c_all = np.concatenate(cols).astype(np.int64)
    order = np.lexsort((c_all, r_all))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, r_all + 1, 1)
    return np.cumsum(indptr), c_all[order]
