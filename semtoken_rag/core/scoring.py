"""Scores: query relevance, semantic entropy, their combination, and span granularity."""

from __future__ import annotations

import numpy as np

from semtoken_rag.core.pooling import l2_normalize


def relevance(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of one query vector with each row.

    Args:
        query: ``(d,)`` query embedding (any norm).
        vectors: ``(n, d)`` span or unit means (any norm).

    Returns:
        ``(n,) float32`` cosines in ``[-1, 1]``.
    """
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.float32)
    q = l2_normalize(query.reshape(1, -1))[0]
    return (l2_normalize(vectors) @ q).astype(np.float32)


def standardize(x: np.ndarray) -> np.ndarray:
    """Z-scores of ``x`` (all zeros when ``x`` is constant or has fewer than two values)."""
    x = x.astype(np.float32, copy=False)
    if len(x) < 2:
        return np.zeros_like(x)
    std = float(x.std())
    if std < 1e-8:
        return np.zeros_like(x)
    return (x - float(x.mean())) / std


def combined_score(
    relevance_scores: np.ndarray,
    entropy: np.ndarray,
    relevance_weight: float,
    entropy_weight: float,
) -> np.ndarray:
    """``w_rel * z(relevance) + w_ent * z(entropy)``, ``(n,) float32``.

    Standardising each term first makes the weights mean the same on every text, whatever the
    spread of cosines or entropies there.
    """
    return (
        relevance_weight * standardize(relevance_scores) + entropy_weight * standardize(entropy)
    ).astype(np.float32)


def coarse_spans(
    span_entropy: np.ndarray,
    span_sizes: np.ndarray,
    entropy_threshold: float,
    min_cluster_size: int,
) -> np.ndarray:
    """Which spans collapse to one unit (coarse granularity).

    A span is coarse when it merged at least ``min_cluster_size`` units and its entropy is below
    ``entropy_threshold`` times the median span entropy of the context: repetitive, low-density
    text.  Everything else stays fine-grained.

    Returns:
        ``(k,) bool``.
    """
    if len(span_entropy) == 0:
        return np.zeros(0, dtype=bool)
    ref = float(np.median(span_entropy))
    return (span_sizes >= min_cluster_size) & (span_entropy < entropy_threshold * ref)


def representatives(
    unit_vectors: np.ndarray, span_of_unit: np.ndarray, span_means: np.ndarray
) -> np.ndarray:
    """Index of each span's most representative unit (highest cosine with the span mean).

    Args:
        unit_vectors: ``(n, d)`` L2-normalised unit fingerprints.
        span_of_unit: ``(n,) int64`` span index of each unit (non-decreasing).
        span_means: ``(k, d)`` span mean fingerprints.

    Returns:
        ``(k,) int64`` unit indices.
    """
    if len(unit_vectors) == 0:
        return np.zeros(0, dtype=np.int64)
    sim = np.einsum("ij,ij->i", unit_vectors, l2_normalize(span_means)[span_of_unit])
    order = np.lexsort((-sim, span_of_unit))
    first = np.ones(len(order), dtype=bool)
    first[1:] = span_of_unit[order][1:] != span_of_unit[order][:-1]
    return order[first].astype(np.int64)
