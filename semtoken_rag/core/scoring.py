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


#: Function words a question shares with every sentence; they would match everywhere and make
#: late-interaction scores uniform.  English only: in other languages every word counts.
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


#: Context words per product in :func:`word_unit_matches`: its temporary is ``(Q, words)``, so
#: a 5,000-word query over 200k context words needed 4 GB at once (now ``Q x 8192`` floats).
_MATCH_WORDS = 8192


def word_unit_matches(
    query_words: np.ndarray, word_vectors: np.ndarray, unit_starts: np.ndarray
) -> np.ndarray:
    """``(Q, U) float32`` best match (cosine) of each query word among each unit's words: what
    late interaction ranks by and the ``auto`` budget's coverage reads (computed once per call).

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

    Each query word is matched to its most similar word of the unit; the unit's score is the
    mean of its ``top_k`` best query-word matches.  Why not the cosine of pooled vectors: a
    pooled sentence vector averages away the one or two words that tie a sentence to the
    question (the bridge sentence of a multi-hop question shares "population" and "census"
    with it, not its subject), and averaging only the best ``top_k`` matches lets a sentence
    that answers part of a long question rank high.

    Args:
        query_words: As in :func:`word_unit_matches` (so are ``word_vectors``, ``unit_starts``).
        top_k: Best query-word matches averaged per unit (clipped to ``[1, Q]``).
        matches: ``(Q, U)`` :func:`word_unit_matches` of these arrays, when the caller has
            them already.

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

    Why: a weight is any finite number (``relevance_weight=3e38`` is valid), and the float32
    sum overflowed to ``inf`` (``inf - inf``: NaN), so units tied at ``inf`` were kept by
    position and NaN ones last: a garbage order.  The order of a weighted sum does not change
    when every weight is scaled by one factor, so then the sum is taken in float64 with the
    weights over the largest and scaled back as far as float32 holds.  A finite float32 sum is
    returned as it is, bit for bit (the selection rounds scores to 5 decimals).

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

    Why: the selection ranks by this sum and its tie rule rounds scores to 5 decimals
    (:func:`selection_order`), so weights far below 1 (``relevance_weight=1e-4``) left a few
    distinct scores and the rest of the order to position.  An order depends only on the
    weights' ratios; with a largest weight of 1 (the defaults, the seed's) the sum is the same,
    bit for bit.
    """
    top = max(weights)
    return weighted_sum(terms, [w / top for w in weights] if top > 0 else weights)


def combined_score(
    relevance_scores: np.ndarray,
    entropy: np.ndarray,
    relevance_weight: float,
    entropy_weight: float,
) -> np.ndarray:
    """``w_rel * z(relevance) + w_ent * z(entropy)`` over the larger weight, ``(n,) float32``
    (see :func:`ranking_sum`).

    Standardising each term first makes the weights mean the same on every text, whatever the
    spread of cosines or entropies there.
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
    sim = np.einsum("ij,ij->i", unit_vectors, l2_normalize(span_means)[span_of_unit])
    order = np.lexsort((-sim, span_of_unit))
    _, first = np.unique(span_of_unit[order], return_index=True)  # each span's best unit
    return order[first].astype(np.int64)


def lead_prior(unit_chunk: np.ndarray) -> np.ndarray:
    """``(U,) float32`` how early each unit sits in its chunk: 0 for the first, -1 for the last.

    Why: a summary request carries no question to rank by, and documents (reports, articles,
    transcripts' openings) put their gist first; measured on L-Eval gov_report_summ this prior
    is what the relevance-only ranking lacked (docs/results.md).  ``unit_chunk`` is ``(U,)``
    non-decreasing, as in :class:`~semtoken_rag.core.arrays.ContextArrays`.
    """
    first = np.searchsorted(unit_chunk, unit_chunk, side="left")
    last = np.searchsorted(unit_chunk, unit_chunk, side="right") - 1
    rank = np.arange(len(unit_chunk)) - first
    return (-rank / np.maximum(last - first, 1)).astype(np.float32)


def selection_order(scores: np.ndarray) -> np.ndarray:
    """``(U,) int64`` units in the order the selection considers them: by descending score, a
    tie to the earlier unit.

    Scores are rounded to 5 decimals first: identical units (repeated chunks) can differ in the
    last bits of a BLAS product, and a tie must go to the earlier unit, not to float noise.  The
    ``auto`` budget ranks by this order too, so the units it pays for are the ones kept.
    """
    return np.argsort(-np.round(scores.astype(np.float64), 5), kind="stable").astype(np.int64)
