"""Scores: query relevance, semantic entropy, their combination, and span granularity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from semtoken_rag.core.pooling import l2_normalize

_PUNCT = "\"'“”‘’()[]{}<>.,;:!?¿¡-–—…/\\*#|`~"


def relevance(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of one query vector with each row.

    Args:
        query: ``(d,)`` query embedding (any norm).
        vectors: ``(n, d)`` span or unit means (any norm).

    Returns:
        ``(n,) float32`` cosines in ``[-1, 1]``.
    """
    q = l2_normalize(query.reshape(1, -1))[0]
    return (l2_normalize(vectors) @ q).astype(np.float32)


#: Function words that match every sentence and flatten late-interaction scores (English only).
STOPWORDS = frozenset(
    (  # noqa: SIM905 (one readable block)
        "a an the of in on at to for by with from and or but not no is are was were be been "
        "being am do does did has have had what which who whom whose when where why how that "
        "this these those as it its into than then there their they them he she his her him i "
        "me my we our you your so if about after before over under up out any all can could "
        "would should will shall may might must also"
    ).split()
)


def content_word_mask(words: list[str]) -> np.ndarray:
    """Which query words carry content: not punctuation-only and not a stop word.

    Args:
        words: The query's words (``find_words`` pieces, punctuation attached).

    Returns:
        ``(len(words),) bool``.
    """
    cores = [w.strip(_PUNCT).lower() for w in words]
    return np.array([any(map(str.isalnum, c)) and c not in STOPWORDS for c in cores], dtype=bool)


#: Context words per product in :func:`word_unit_matches`, bounding its ``(Q, words)`` temporary.
_MATCH_WORDS = 8192


def word_unit_matches(
    query_words: np.ndarray, word_vectors: np.ndarray, unit_starts: np.ndarray
) -> np.ndarray:
    """``(Q, U) float32`` best cosine of each query word among each unit's words.

    Read by late interaction and the ``auto`` budget's coverage (computed once per call).

    Args:
        query_words: ``(Q, d) float32`` L2-normalised fingerprints of the query's content words.
        word_vectors: ``(W, d) float32`` L2-normalised word fingerprints of the context.
        unit_starts: ``(U,) int64`` first word of each unit (strictly increasing, < W).
    """
    q = query_words.astype(np.float32, copy=False)
    words = word_vectors.astype(np.float32, copy=False)
    bounds = np.r_[unit_starts, len(words)]
    out = np.empty((len(q), len(unit_starts)), dtype=np.float32)
    u = 0
    while u < len(unit_starts):  # whole units of about _MATCH_WORDS words per product
        v = int(np.searchsorted(bounds, bounds[u] + _MATCH_WORDS, side="right")) - 1
        v = min(max(v, u + 1), len(unit_starts))
        sims = q @ words[bounds[u] : bounds[v]].T
        out[:, u:v] = np.maximum.reduceat(sims, unit_starts[u:v] - bounds[u], axis=1)
        u = v
    return out


def late_interaction(
    query_words: np.ndarray,
    word_vectors: np.ndarray,
    unit_starts: np.ndarray,
    top_k: int,
    matches: np.ndarray | None = None,
) -> np.ndarray:
    """Late-interaction relevance of each unit (ColBERT's MaxSim, averaged over the best words).

    Each query word is matched to the unit's most similar word; the score is the mean of the
    ``top_k`` best matches. A pooled vector averages away the few words tying a sentence to the
    question, and the top-``k`` mean lets a sentence answering part of a long question rank high.

    Args:
        query_words: As in :func:`word_unit_matches` (so are ``word_vectors``, ``unit_starts``).
        top_k: Best query-word matches averaged per unit (clipped to ``[1, Q]``).
        matches: ``(Q, U)`` :func:`word_unit_matches` of these arrays, if already computed.

    Returns:
        ``(U,) float32`` scores in ``[-1, 1]``; zeros when there are no query words.
    """
    n_units = len(unit_starts)
    if n_units == 0 or len(query_words) == 0 or len(word_vectors) == 0:
        return np.zeros(n_units, dtype=np.float32)
    best = word_unit_matches(query_words, word_vectors, unit_starts) if matches is None else matches
    k = int(min(max(top_k, 1), len(best)))
    if k < len(best):
        best = np.partition(best, len(best) - k, axis=0)[len(best) - k :]
    return best.mean(axis=0).astype(np.float32)


def standardize(x: np.ndarray) -> np.ndarray:
    """Z-scores of ``x`` (all zeros when ``x`` is constant or has fewer than two values)."""
    x = x.astype(np.float32, copy=False)
    std = float(x.std()) if len(x) > 1 else 0.0
    if std < 1e-8:
        return np.zeros_like(x)
    return (x - float(x.mean())) / std


#: Largest float32: the most a reported unit score may be.
F32_MAX = float(np.finfo(np.float32).max)


def weighted_sum(terms: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """``sum_i weights[i] * terms[i]``, ``(n,) float32``, finite whatever the weights.

    Any finite weight is valid, so the float32 sum can overflow (``inf - inf``: NaN); then it is
    redone in float64 with the weights over the largest (same order), scaled back as far as
    float32 holds. A finite float32 sum is returned bit for bit.

    Args:
        terms: ``(n,) float32`` standardised scores (z-scores: finite, small).
        weights: ``>= 0`` finite weight of each term.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # float32, as the weights x z-scores
        out = np.asarray(weights[0] * terms[0])
        for t, w in zip(terms[1:], weights[1:], strict=True):
            out = out + w * t
    if np.isfinite(out).all():
        return out.astype(np.float32)
    top = max(weights)
    x = sum((w / top) * t.astype(np.float64) for t, w in zip(terms, weights, strict=True))
    scale = min(top, F32_MAX / max(float(np.abs(x).max()), 1.0))
    return np.clip(x * scale, -F32_MAX, F32_MAX).astype(np.float32)


def ranking_sum(terms: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """:func:`weighted_sum` with the weights over the largest (all zero: as given).

    The tie rule rounds scores to 5 decimals (:func:`selection_order`), so tiny weights would
    tie most units; the order depends only on the weights' ratios (largest 1: unchanged).
    """
    top = max(weights)
    return weighted_sum(terms, [w / top for w in weights] if top > 0 else weights)


def combined_score(
    relevance_scores: np.ndarray,
    entropy: np.ndarray,
    relevance_weight: float,
    entropy_weight: float,
) -> np.ndarray:
    """``w_rel * z(relevance) + w_ent * z(entropy)`` over the larger weight, ``(n,) float32``.

    Standardised terms make the weights mean the same on every text (see :func:`ranking_sum`).
    """
    z = [standardize(relevance_scores), standardize(entropy)]
    return ranking_sum(z, [relevance_weight, entropy_weight])


def coarse_spans(
    span_entropy: np.ndarray,
    span_sizes: np.ndarray,
    entropy_threshold: float,
    min_cluster_size: int,
) -> np.ndarray:
    """Which spans collapse to one unit (coarse granularity).

    Spans of at least ``min_cluster_size`` units with entropy below ``entropy_threshold`` times
    the context's median span entropy (repetitive, low-density text).

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
    sim = np.einsum("ij,ij->i", unit_vectors, l2_normalize(span_means)[span_of_unit])
    order = np.lexsort((-sim, span_of_unit))
    _, first = np.unique(span_of_unit[order], return_index=True)  # each span's best unit
    return order[first].astype(np.int64)


def lead_prior(unit_chunk: np.ndarray) -> np.ndarray:
    """``(U,) float32`` how early each unit sits in its chunk: 0 for the first, -1 for the last.

    For summaries: documents put their gist first (docs/results.md). ``unit_chunk`` is ``(U,)``
    non-decreasing, as in :class:`~semtoken_rag.core.arrays.ContextArrays`.
    """
    first = np.searchsorted(unit_chunk, unit_chunk, side="left")
    last = np.searchsorted(unit_chunk, unit_chunk, side="right") - 1
    rank = np.arange(len(unit_chunk)) - first
    return (-rank / np.maximum(last - first, 1)).astype(np.float32)


def selection_order(scores: np.ndarray) -> np.ndarray:
    """``(U,) int64`` units by descending score, a tie to the earlier unit.

    Rounded to 5 decimals first so identical units differing in a BLAS product's last bits tie.
    The ``auto`` budget ranks by this order too, so the units it pays for are the ones kept.
    """
    return np.argsort(-np.round(scores.astype(np.float64), 5), kind="stable").astype(np.int64)
