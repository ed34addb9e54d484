"""The core stages chained for one context (all chunks of one query), arrays in and out.

Input is the concatenation of every chunk's words and units; units never cross a chunk
boundary, and a span never does either.  The function is pure: same arrays and parameters,
same plan, byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.budget import Selection, select_units
from semtoken_rag.core.coverage import coverage_scores
from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.pooling import l2_normalize, segment_lengths, segment_means, segment_sums
from semtoken_rag.core.redundancy import near_duplicate_pairs, unit_shingles
from semtoken_rag.core.scoring import (
    coarse_spans,
    combined_score,
    late_interaction,
    relevance,
    representatives,
    standardize,
)
from semtoken_rag.core.spans import form_spans

#: Near-duplicate search ``(unit_vectors, threshold) -> CSR`` with the contract of
#: :func:`~semtoken_rag.core.redundancy.near_duplicate_pairs` (the engine injects a FAISS range
#: search for large contexts; the core itself never imports FAISS).
DedupSearch = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]

#: ``on_stage(name, seconds)``: called after each stage of :func:`plan_context` (timings for
#: benchmarks and tracing; the pipeline's own code is what gets measured).
StageHook = Callable[[str, float], None]

#: Stage names reported to a :data:`StageHook`, in order.
STAGES = ("pooling", "spans", "entropy", "scoring", "dedup", "selection")


class _Stages:
    """Times consecutive stages for an optional hook (no cost without one)."""

    def __init__(self, hook: StageHook | None) -> None:
        self.hook = hook
        self.t = time.perf_counter() if hook else 0.0

    def done(self, name: str) -> None:
        if self.hook is not None:
            now = time.perf_counter()
            self.hook(name, now - self.t)
            self.t = now


@dataclass(frozen=True)
class ContextArrays:
    """Everything the core needs about one context.

    Attributes:
        word_vectors: ``(W, d) float32`` L2-normalised word fingerprints, chunks concatenated.
        word_costs: ``(W,) int64`` tokens of each word in the counting tokenizer.
        unit_starts: ``(U,) int64`` first (global) word of each unit.
        unit_chunk: ``(U,) int64`` chunk index of each unit (non-decreasing).
        forced: ``(U,) bool`` units force-kept by a rule.
        word_ids: ``(W,) uint64`` id of each normalised word (equal words, equal ids), for the
            lexical repeat check; ``None`` disables it.
    """

    word_vectors: np.ndarray
    word_costs: np.ndarray
    unit_starts: np.ndarray
    unit_chunk: np.ndarray
    forced: np.ndarray
    word_ids: np.ndarray | None = None

    @property
    def n_units(self) -> int:
        return len(self.unit_starts)


@dataclass(frozen=True)
class CorePlan:
    """The core's decision for one context.

    Attributes:
        kept: ``(U,) bool`` units kept in full.
        partial: ``(U,) int64`` leading words kept of units not kept in full (0 for most).
        span_starts: ``(S,) int64`` first unit of each span.
        span_entropy: ``(S,) float32`` semantic entropy of each span.
        unit_scores: ``(U,) float32`` combined score of each unit.
        coarse: ``(S,) bool`` spans collapsed to their representative unit.
        unit_costs: ``(U,) int64`` tokens of each unit.
        dedup_skipped_tokens: Tokens skipped as near-duplicates.
    """

    kept: np.ndarray
    partial: np.ndarray
    span_starts: np.ndarray
    span_entropy: np.ndarray
    unit_scores: np.ndarray
    coarse: np.ndarray
    unit_costs: np.ndarray
    dedup_skipped_tokens: int


def _pooled_relevance(
    query: np.ndarray, ctx: ContextArrays, unit_vecs: np.ndarray, params: SelectionConfig
) -> np.ndarray:
    return relevance(query if query.ndim == 1 else query.mean(axis=0), unit_vecs)


def _late_relevance(
    query: np.ndarray, ctx: ContextArrays, unit_vecs: np.ndarray, params: SelectionConfig
) -> np.ndarray:
    words = query.reshape(1, -1) if query.ndim == 1 else query
    return late_interaction(words, ctx.word_vectors, ctx.unit_starts, params.query_top_words)


#: ``SelectionConfig.relevance`` -> ``(query, ctx, unit_vectors, params) -> (U,) float32``.
RELEVANCE: dict[
    str, Callable[[np.ndarray, ContextArrays, np.ndarray, SelectionConfig], np.ndarray]
] = {
    "pooled": _pooled_relevance,
    "late_interaction": _late_relevance,
}


def plan_context(
    ctx: ContextArrays,
    query_vector: np.ndarray | None,
    budgets: np.ndarray,
    params: SelectionConfig,
    *,
    separator_cost: int = 0,
    dedup_search: DedupSearch | None = None,
    on_stage: StageHook | None = None,
    generic_query: bool = False,
) -> CorePlan:
    """Spans, entropy, scores and the budgeted selection for one context.

    Args:
        ctx: The context's arrays.
        query_vector: ``(d,)`` pooled query embedding, ``(Q, d)`` fingerprints of the query's
            content words (what late interaction matches word by word; pooled relevance takes
            their mean), or ``None`` (no query).
        budgets: ``(1,) int64`` one joint budget, or ``(n_chunks,) int64`` one per chunk.
        params: The selection knobs.
        separator_cost: Tokens of the separator between two kept pieces of a chunk; charged to
            the budget.
        dedup_search: Near-duplicate search replacing the exact numpy one (see
            :data:`DedupSearch`).
        on_stage: Called with each stage's name and duration (see :data:`STAGES`).
        generic_query: The query asks for a summary rather than a fact (the ``auto``
            objective then buys coverage; see :func:`objective_for`).

    Returns:
        A :class:`CorePlan`.
    """
    n_units = ctx.n_units
    if n_units == 0:
        return _empty_plan()
    clock = _Stages(on_stage)
    unit_costs = segment_sums(ctx.word_costs.astype(np.int64), ctx.unit_starts)
    unit_vecs = l2_normalize(segment_means(ctx.word_vectors, ctx.unit_starts))
    clock.done("pooling")

    breaks = np.zeros(n_units, dtype=bool)
    breaks[1:] = ctx.unit_chunk[1:] != ctx.unit_chunk[:-1]
    span_starts = form_spans(
        unit_vecs, params.similarity_threshold, params.max_cluster_size, breaks
    )
    span_sizes = segment_lengths(span_starts, n_units)
    span_of_unit = np.repeat(np.arange(len(span_starts)), span_sizes)
    clock.done("spans")
    span_word_starts = ctx.unit_starts[span_starts]
    entropy = span_entropy(ctx.word_vectors, span_word_starts)
    clock.done("entropy")

    w_ent = params.entropy_weight
    if query_vector is not None and query_vector.size:
        rel = RELEVANCE[params.relevance](query_vector, ctx, unit_vecs, params)
        w_rel = params.relevance_weight
    elif params.no_query_mode == "centroid":
        rel = relevance(ctx.word_vectors.mean(axis=0), unit_vecs)
        w_rel = params.relevance_weight
    else:
        # The paper's top-H: entropy alone is the score, whatever its weight next to relevance.
        rel = np.zeros(n_units, dtype=np.float32)
        w_rel, w_ent = 0.0, max(w_ent, 1.0)
    has_query = query_vector is not None and bool(query_vector.size)
    objective = objective_for(params, has_query, generic_query)
    if objective == "coverage":
        # Coverage weights: dense units (span entropy) and, with a query, relevant ones count
        # more; the greedy order becomes the scores the one budget rule spends.
        log_w = w_ent * standardize(entropy[span_of_unit])
        if has_query:
            log_w = log_w + params.coverage_relevance * standardize(rel)
        scores = coverage_scores(
            unit_vecs, unit_costs, np.exp(log_w), neighbours=params.coverage_neighbours
        )
    else:
        scores = combined_score(rel, entropy[span_of_unit], w_rel, w_ent)
        if objective == "summary":
            scores = scores + params.lead_weight * standardize(lead_prior(ctx.unit_chunk))

    coarse = coarse_spans(entropy, span_sizes, params.entropy_threshold, params.min_cluster_size)
    candidates = np.ones(n_units, dtype=bool)
    if coarse.any():
        span_means = segment_means(ctx.word_vectors, span_word_starts)
        reps = representatives(unit_vecs, span_of_unit, span_means)
        candidates = ~coarse[span_of_unit]
        candidates[reps[coarse]] = True
    clock.done("scoring")

    dups = (
        (dedup_search or near_duplicate_pairs)(unit_vecs, params.dedup_threshold)
        if params.dedup_threshold is not None
        else None
    )
    shingles = (
        unit_shingles(ctx.word_ids, ctx.unit_starts)
        if ctx.word_ids is not None and params.lexical_dedup_threshold is not None
        else None
    )
    clock.done("dedup")
    kept, partial, skipped = select_context(
        ctx,
        scores,
        unit_costs,
        budgets,
        params,
        candidates=candidates,
        duplicates=dups,
        shingles=shingles,
        separator_cost=separator_cost,
    )
    clock.done("selection")
    return CorePlan(
        kept=kept,
        partial=partial,
        span_starts=span_starts,
        span_entropy=entropy,
        unit_scores=scores,
        coarse=coarse,
        unit_costs=unit_costs,
        dedup_skipped_tokens=skipped,
    )


def objective_for(params: SelectionConfig, has_query: bool, generic_query: bool) -> str:
    """The objective actually used: ``auto`` is ``summary`` without a query or for a summary
    request, ``relevance`` otherwise."""
    if params.objective != "auto":
        return params.objective
    return "summary" if generic_query or not has_query else "relevance"


def lead_prior(unit_chunk: np.ndarray) -> np.ndarray:
    """``(U,) float32`` how early each unit sits in its chunk: 0 for the first, -1 for the last.

    Why: a summary request carries no question to rank by, and documents (reports, articles,
    transcripts' openings) put their gist first; measured on L-Eval gov_report_summ this prior
    is what the relevance-only ranking lacked (docs/results.md).
    """
    n = len(unit_chunk)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    starts = np.flatnonzero(np.r_[True, unit_chunk[1:] != unit_chunk[:-1]])
    sizes = np.diff(np.r_[starts, n])
    first = np.repeat(starts, sizes)
    rank = np.arange(n) - first
    return (-rank / np.maximum(np.repeat(sizes, sizes) - 1, 1)).astype(np.float32)


def plan_scored(
    ctx: ContextArrays,
    scores: np.ndarray,
    budgets: np.ndarray,
    params: SelectionConfig,
    *,
    separator_cost: int = 0,
) -> CorePlan:
    """The budgeted selection of units ranked by *external* scores (a baseline's own).

    Why: every method the harness compares must spend its budget and render the same way, so
    that only the scores differ.  This runs exactly :func:`select_context` of
    :func:`plan_context` (forced units, partial fill, separator costs), without SemToken's own
    stages: no spans, no entropy, no near-duplicate skip.

    Args:
        ctx: The context's arrays (``word_vectors`` may be empty: ``(W, 0)``).
        scores: ``(U,) float`` higher is kept first; ties keep the earlier unit.
        budgets: As in :func:`plan_context`.
        params: The selection knobs (``fill_partial`` and ``min_fill_tokens`` apply).
        separator_cost: As in :func:`plan_context`.
    """
    n_units = ctx.n_units
    if n_units == 0:
        return _empty_plan()
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(scores) != n_units:
        raise ValueError(f"{len(scores)} scores for {n_units} units")
    unit_costs = segment_sums(ctx.word_costs.astype(np.int64), ctx.unit_starts)
    kept, partial, _ = select_context(
        ctx, scores, unit_costs, budgets, params, separator_cost=separator_cost
    )
    return CorePlan(
        kept=kept,
        partial=partial,
        span_starts=np.arange(n_units, dtype=np.int64),
        span_entropy=np.zeros(n_units, dtype=np.float32),
        unit_scores=scores,
        coarse=np.zeros(n_units, dtype=bool),
        unit_costs=unit_costs,
        dedup_skipped_tokens=0,
    )


def select_context(
    ctx: ContextArrays,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    budgets: np.ndarray,
    params: SelectionConfig,
    *,
    candidates: np.ndarray | None = None,
    duplicates: tuple[np.ndarray, np.ndarray] | None = None,
    shingles: tuple[np.ndarray, np.ndarray] | None = None,
    separator_cost: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The one budget rule: :func:`~semtoken_rag.core.budget.select_units` over the joint
    context or each chunk.

    Returns:
        ``(kept (U,) bool, partial (U,) int64 leading words of partly kept units, tokens
        skipped as near-duplicates)``.
    """
    n_units = ctx.n_units
    n_words = len(ctx.word_costs)
    word_costs = None
    if params.fill_partial:
        ends = np.append(ctx.unit_starts[1:], n_words)
        word_costs = np.empty(n_units, dtype=object)
        for i, (s, e) in enumerate(zip(ctx.unit_starts.tolist(), ends.tolist(), strict=False)):
            word_costs[i] = ctx.word_costs[s:e]
    cand = np.ones(n_units, dtype=bool) if candidates is None else candidates
    kept = np.zeros(n_units, dtype=bool)
    partial = np.zeros(n_units, dtype=np.int64)
    skipped = 0
    groups = (
        [np.arange(n_units)]
        if len(budgets) == 1
        else [np.flatnonzero(ctx.unit_chunk == c) for c in range(len(budgets))]
    )
    for g, idx in enumerate(groups):
        if len(idx) == 0:
            continue
        sel: Selection = select_units(
            scores[idx],
            unit_costs[idx],
            int(budgets[g]),
            candidates=cand[idx],
            forced=ctx.forced[idx],
            duplicates=_restrict(duplicates, idx) if duplicates is not None else None,
            word_costs=word_costs[idx] if word_costs is not None else None,
            min_fill_tokens=params.min_fill_tokens,
            sep_cost=separator_cost,
            unit_chunk=ctx.unit_chunk[idx],
            shingles=_restrict_shingles(shingles, idx) if shingles is not None else None,
            lexical_threshold=params.lexical_dedup_threshold,
        )
        kept[idx] = sel.kept
        if sel.partial_unit >= 0:
            partial[idx[sel.partial_unit]] = sel.partial_words
        skipped += sel.dedup_skipped_tokens
    return kept, partial, skipped


def _empty_plan() -> CorePlan:
    empty_i = np.zeros(0, dtype=np.int64)
    empty_f = np.zeros(0, dtype=np.float32)
    return CorePlan(
        np.zeros(0, bool), empty_i, empty_i, empty_f, empty_f, np.zeros(0, bool), empty_i, 0
    )


def _restrict(
    dups: tuple[np.ndarray, np.ndarray], idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The CSR duplicate graph restricted to the units ``idx`` (renumbered 0..len-1)."""
    indptr, indices = dups
    if len(idx) == len(indptr) - 1:
        return dups
    remap = np.full(len(indptr) - 1, -1, dtype=np.int64)
    remap[idx] = np.arange(len(idx))
    new_ptr = [0]
    new_idx: list[np.ndarray] = []
    for i in idx.tolist():
        part = remap[indices[indptr[i] : indptr[i + 1]]]
        part = part[part >= 0]
        new_idx.append(part)
        new_ptr.append(new_ptr[-1] + len(part))
    flat = np.concatenate(new_idx) if new_idx else np.zeros(0, dtype=np.int64)
    return np.asarray(new_ptr, dtype=np.int64), flat.astype(np.int64)


def _restrict_shingles(
    shingles: tuple[np.ndarray, np.ndarray], idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The shingle CSR of the contiguous unit range ``idx`` (one chunk, or all units)."""
    indptr, hashes = shingles
    if len(idx) == len(indptr) - 1:
        return shingles
    a, b = int(idx[0]), int(idx[-1]) + 1
    return indptr[a : b + 1] - indptr[a], hashes[indptr[a] : indptr[b]]
