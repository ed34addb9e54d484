"""Semantic entropy of spans: H = trace of the covariance of their fingerprints.

``Tr Cov(X) = mean_i ||x_i||^2 - ||mean_i x_i||^2`` (population covariance): two segment sums,
no loop per span. For L2-normalised fingerprints ``H`` is in ``[0, 1]`` (0: identical vectors).
"""

from __future__ import annotations

import numpy as np

from semtoken_rag.core.pooling import segment_lengths, segment_sums


def span_entropy(vectors: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Trace of the covariance of each segment of ``vectors``.

    Args:
        vectors: ``(n, d) float32`` fingerprints (words of the spans, in order).
        starts: ``(k,) int64`` segment starts (``starts[0] == 0``).

    Returns:
        ``(k,) float32`` entropies, ``>= 0``.
    """
    x = vectors.astype(np.float32, copy=False)
    n = segment_lengths(starts, len(x)).astype(np.float32)
    sq = segment_sums(np.einsum("ij,ij->i", x, x), starts) / n
    mean = segment_sums(x, starts) / n[:, None]
    h = sq - np.einsum("ij,ij->i", mean, mean)
    return np.maximum(h, 0.0).astype(np.float32)
