"""Choosing the near-duplicate search for ``SemTokenConfig.dedup_backend``.

The core takes the search as a function, so it never imports FAISS; this is where the engine
picks exact numpy products for small contexts and a FAISS range search for large ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from semtoken_rag.core.redundancy import near_duplicate_pairs

#: Above this many units the ``auto`` dedup backend uses FAISS (when installed).
_FAISS_DEDUP_MIN_UNITS = 4096


def dedup_backend(
    name: str,
) -> Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]] | None:
    """The near-duplicate search for ``SemTokenConfig.dedup_backend`` (FAISS imported lazily)."""
    if name == "numpy":
        return None

    def search(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        if name == "auto" and len(vectors) < _FAISS_DEDUP_MIN_UNITS:
            return near_duplicate_pairs(vectors, threshold)
        try:
            from semtoken_rag.store import near_duplicates
        except ImportError:
            if name == "faiss":
                raise
            return near_duplicate_pairs(vectors, threshold)
        return near_duplicates(vectors, threshold)

    return search
