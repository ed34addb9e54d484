"""The core stages chained for one context (all chunks of one query), arrays in and out.

Input concatenates every chunk's words and units; neither units nor spans cross a chunk
boundary. Pure: same arrays and parameters, same plan, byte for byte.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.adaptive import AdaptiveRule, BudgetChoice, scope_budgets
from semtoken_rag.core.arrays import ContextArrays, CorePlan, empty_plan
from semtoken_rag.core.autoselect import select_auto
from semtoken_rag.core.budget import CSR, UnitRules, select_context
from semtoken_rag.core.coverage import coverage_scores
from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.pooling import l2_normalize, segment_lengths, segment_means, segment_sums
from semtoken_rag.core.redundancy import near_duplicate_pairs, unit_shingles
from semtoken_rag.core.scoring import (
    F32_MAX,
    coarse_spans,
    combined_score,
    late_interaction,
    lead_prior,
    ranking_sum,
    relevance,
    representatives,
    standardize,
    weighted_sum,
    word_unit_matches,
)
from semtoken_rag.core.spans import form_spans

__all__ = ["STAGES", "DedupSearch", "StageHook", "objective_for", "plan_context", "plan_scored"]

#: Near-duplicate search ``(unit_vectors, threshold) -> CSR`` as
#: :func:`~semtoken_rag.core.redundancy.near_duplicate_pairs` (the engine may inject FAISS).
DedupSearch = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]

#: ``on_stage(name, seconds)``: called after each stage of :func:`plan_context` (timings).
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
class _Units:
    """The context's units after pooling and span formation (what scoring reads).

    Attributes:
        vectors: ``(U, d) float32`` L2-normalised mean fingerprint of each unit.
        costs: ``(U,) int64`` tokens of each unit.
        span_starts: ``(S,) int64`` first unit of each span.
        span_sizes: ``(S,) int64`` units of each span.
        span_of_unit: ``(U,)`` span of each unit.
        span_word_starts: ``(S,) int64`` first word of each span.
    """

    vectors: np.ndarray
    costs: np.ndarray
    span_starts: np.ndarray
    span_sizes: np.ndarray
    span_of_unit: np.ndarray
    span_word_starts: np.ndarray


def _query_words(query: np.ndarray) -> np.ndarray:
    """``(Q, d)`` query word fingerprints (a pooled ``(d,)`` query is one word)."""
    return query.reshape(1, -1) if query.ndim == 1 else query


def _word_matches(
    ctx: ContextArrays,
    query_vector: np.ndarray | None,
    params: SelectionConfig,
    budgets: np.ndarray | AdaptiveRule,
) -> np.ndarray | None:
    """``(Q, U)`` word-unit matches, once per call, when late interaction or the ``auto``
    budget reads them (their matrix product is most of either's cost)."""
    if query_vector is None or not query_vector.size or not ctx.n_units:
        return None
    if params.relevance != "late_interaction" and not isinstance(budgets, AdaptiveRule):
        return None
    return word_unit_matches(_query_words(query_vector), ctx.word_vectors, ctx.unit_starts)


def _spans(
    ctx: ContextArrays, unit_vecs: np.ndarray, unit_costs: np.ndarray, params: SelectionConfig
) -> _Units:
    """Units grouped into spans that never cross a chunk boundary."""
    breaks = np.r_[False, ctx.unit_chunk[1:] != ctx.unit_chunk[:-1]]
    span_starts = form_spans(
        unit_vecs, params.similarity_threshold, params.max_cluster_size, breaks
    )
    span_sizes = segment_lengths(span_starts, ctx.n_units)
    return _Units(
        vectors=unit_vecs,
        costs=unit_costs,
        span_starts=span_starts,
        span_sizes=span_sizes,
        span_of_unit=np.repeat(np.arange(len(span_starts)), span_sizes),
        span_word_starts=ctx.unit_starts[span_starts],
    )


def _relevance(
    ctx: ContextArrays,
    query_vector: np.ndarray | None,
    unit_vecs: np.ndarray,
    params: SelectionConfig,
    matches: np.ndarray | None,
) -> tuple[np.ndarray, float, float]:
    """``(relevance (U,), relevance weight, entropy weight)`` for the query (or its absence)."""
    w_ent = params.entropy_weight
    if query_vector is not None and query_vector.size:
        if params.relevance == "pooled":
            q = query_vector if query_vector.ndim == 1 else query_vector.mean(axis=0)
            rel = relevance(q, unit_vecs)
        else:
            words, top = _query_words(query_vector), params.query_top_words
            rel = late_interaction(words, ctx.word_vectors, ctx.unit_starts, top, matches)
        return rel, params.relevance_weight, w_ent
    if params.no_query_mode == "centroid":
        rel = relevance(ctx.word_vectors.mean(axis=0), unit_vecs)
        return rel, params.relevance_weight, w_ent
    # The paper's top-H: entropy alone is the score, whatever its weight next to relevance.
    return np.zeros(ctx.n_units, dtype=np.float32), 0.0, max(w_ent, 1.0)


def _unit_scores(
    ctx: ContextArrays,
    units: _Units,
    entropy: np.ndarray,
    query_vector: np.ndarray | None,
    params: SelectionConfig,
    generic_query: bool,
    matches: np.ndarray | None,
) -> np.ndarray:
    """``(U,) float32`` the score each unit is ranked by, under the objective in force."""
    rel, w_rel, w_ent = _relevance(ctx, query_vector, units.vectors, params, matches)
    has_query = query_vector is not None and bool(query_vector.size)
    objective = objective_for(params, has_query, generic_query)
    unit_entropy = entropy[units.span_of_unit]
    if objective == "coverage":
        # Dense units (span entropy) and, with a query, relevant ones weigh more.
        terms, factors = [standardize(unit_entropy)], [w_ent]
        if has_query:
            terms, factors = [*terms, standardize(rel)], [w_ent, params.coverage_relevance]
        # Shifted by the max before exp so large weights cannot overflow (NaN gains); same order.
        log_w = weighted_sum(terms, factors).astype(np.float64)
        weights = np.exp(log_w - log_w.max())
        return coverage_scores(
            units.vectors, units.costs, weights, neighbours=params.coverage_neighbours
        )
    if objective != "summary":
        return combined_score(rel, unit_entropy, w_rel, w_ent)
    # One weighted sum, so the lead term is weighed as configured.
    terms = [standardize(rel), standardize(unit_entropy), standardize(lead_prior(ctx.unit_chunk))]
    return ranking_sum(terms, [w_rel, w_ent, params.lead_weight])


def _candidates(
    ctx: ContextArrays, units: _Units, entropy: np.ndarray, params: SelectionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(coarse (S,) bool, candidates (U,) bool)``: low-entropy spans collapse to their
    representative unit, the only one of them that may be chosen."""
    coarse = coarse_spans(
        entropy, units.span_sizes, params.entropy_threshold, params.min_cluster_size
    )
    candidates = np.ones(ctx.n_units, dtype=bool)
    if coarse.any():
        span_means = segment_means(ctx.word_vectors, units.span_word_starts)
        reps = representatives(units.vectors, units.span_of_unit, span_means)
        candidates = ~coarse[units.span_of_unit]
        candidates[reps[coarse]] = True
    return coarse, candidates


def _redundancy(
    ctx: ContextArrays,
    unit_vecs: np.ndarray,
    params: SelectionConfig,
    dedup_search: DedupSearch | None,
) -> tuple[CSR | None, CSR | None]:
    """``(near-duplicate graph, word shingles)`` of the units, each ``None`` when disabled.

    No shingles for word units: every repeated word would count as repeated text."""
    dups: CSR | None = None
    shingles: CSR | None = None
    if params.dedup_threshold is not None:
        dups = (dedup_search or near_duplicate_pairs)(unit_vecs, params.dedup_threshold)
    lexical = params.lexical_dedup_threshold is not None and params.unit != "word"
    if ctx.word_ids is not None and lexical:
        shingles = unit_shingles(ctx.word_ids, ctx.unit_starts)
    return dups, shingles


def plan_context(
    ctx: ContextArrays,
    query_vector: np.ndarray | None,
    budgets: np.ndarray | AdaptiveRule,
    params: SelectionConfig,
    *,
    separator_cost: int = 0,
    dedup_search: DedupSearch | None = None,
    on_stage: StageHook | None = None,
    generic_query: bool = False,
) -> CorePlan:
    """Spans, entropy, scores and the budgeted selection for one context.

    Args:
        query_vector: ``(d,)`` pooled query embedding, ``(Q, d)`` fingerprints of the query's
            content words (pooled relevance takes their mean), or ``None`` (no query).
        budgets: ``(1,) int64`` joint, ``(n_chunks,) int64`` per chunk, or an ``auto``
            :class:`~semtoken_rag.core.adaptive.AdaptiveRule` (``CorePlan.budget_choice``).
        separator_cost: Tokens of the separator between two kept pieces of a chunk (budgeted).
        dedup_search: Replaces the exact numpy near-duplicate search (see :data:`DedupSearch`).
        on_stage: Called with each stage's name and duration (see :data:`STAGES`).
        generic_query: The query asks for a summary (see :func:`objective_for`).
    """
    if ctx.n_units == 0:  # nothing to keep; under the ``auto`` rule, its floor (0 tokens)
        if not isinstance(budgets, AdaptiveRule):
            return empty_plan()
        floor = BudgetChoice(budgets.floor, "floor")
        shares = scope_budgets(floor, budgets, np.zeros(budgets.n_chunks, np.int64))
        return dataclasses.replace(empty_plan(), budget_choice=floor, budgets=shares)
    clock = _Stages(on_stage)
    unit_costs = segment_sums(ctx.word_costs.astype(np.int64), ctx.unit_starts)
    unit_vecs = l2_normalize(segment_means(ctx.word_vectors, ctx.unit_starts))
    clock.done("pooling")
    units = _spans(ctx, unit_vecs, unit_costs, params)
    clock.done("spans")
    entropy = span_entropy(ctx.word_vectors, units.span_word_starts)
    clock.done("entropy")
    matches = _word_matches(ctx, query_vector, params, budgets)
    scores = _unit_scores(ctx, units, entropy, query_vector, params, generic_query, matches)
    coarse, candidates = _candidates(ctx, units, entropy, params)
    clock.done("scoring")
    dups, shingles = _redundancy(ctx, unit_vecs, params, dedup_search)
    clock.done("dedup")
    rules = UnitRules(candidates, duplicates=dups, shingles=shingles, sep_cost=separator_cost)
    if isinstance(budgets, AdaptiveRule):  # chosen knowing what the selection skips
        kept, partial, skipped, choice, chosen = _select_auto(
            ctx, scores, units.costs, rules, budgets, params, query_vector, matches, generic_query
        )
    else:
        kept, partial, skipped = select_context(ctx, scores, units.costs, budgets, params, rules)
        choice, chosen = None, None
    clock.done("selection")
    return CorePlan(kept, partial, units.span_starts, entropy, scores, coarse, units.costs,
                    skipped, choice, chosen)  # fmt: skip


def _select_auto(
    ctx: ContextArrays,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    rules: UnitRules,
    budgets: AdaptiveRule,
    params: SelectionConfig,
    query_vector: np.ndarray | None,
    matches: np.ndarray | None,
    generic_query: bool,
) -> tuple[np.ndarray, np.ndarray, int, BudgetChoice, np.ndarray]:
    """:func:`~semtoken_rag.core.autoselect.select_auto` with the rule completed from the call
    (summary flag, separator cost) and nothing to cover unless the objective is relevance."""
    rule = dataclasses.replace(budgets, summary=generic_query, separator_cost=rules.sep_cost)
    if objective_for(params, matches is not None, generic_query) != "relevance":
        matches = None  # a summary (or coverage) objective: nothing to cover, the ceiling
    words = None if query_vector is None else _query_words(query_vector)
    return select_auto(ctx, scores, unit_costs, rules, rule, params, words, matches)


def objective_for(params: SelectionConfig, has_query: bool, generic_query: bool) -> str:
    """The objective actually used: ``auto`` is ``summary`` without a query or for a summary
    request, ``relevance`` otherwise."""
    if params.objective != "auto":
        return params.objective
    return "summary" if generic_query or not has_query else "relevance"


def plan_scored(
    ctx: ContextArrays,
    scores: np.ndarray,
    budgets: np.ndarray,
    params: SelectionConfig,
    *,
    separator_cost: int = 0,
) -> CorePlan:
    """The budgeted selection of units ranked by *external* scores (a baseline's own).

    Every compared method spends its budget the same way, so only the scores differ: exactly
    :func:`select_context` of :func:`plan_context`, without spans, entropy or near-duplicate skip.

    Args:
        ctx: The context's arrays (``word_vectors`` may be empty: ``(W, 0)``).
        scores: ``(U,) float`` higher is kept first; ties keep the earlier unit.
        params: The selection knobs (``fill_partial`` and ``min_fill_tokens`` apply).
    """
    n_units = ctx.n_units
    if n_units == 0:
        return empty_plan()
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != n_units:
        raise ValueError(f"{len(scores)} scores for {n_units} units")
    unit_costs = segment_sums(ctx.word_costs.astype(np.int64), ctx.unit_starts)
    rules = UnitRules(sep_cost=separator_cost)
    # Standardised (same order) so the selection's 5-decimal tie rule absorbs float noise
    # whatever the caller's scale.
    unit = scores / max(float(np.abs(scores).max()), np.finfo(np.float64).tiny)
    standard = (unit - unit.mean()) / (float(unit.std()) or 1.0)
    kept, partial, _ = select_context(ctx, standard, unit_costs, budgets, params, rules)
    spans, zeros = np.arange(n_units, dtype=np.int64), np.zeros(n_units, dtype=np.float32)
    shown = np.clip(scores, -F32_MAX, F32_MAX).astype(np.float32)  # finite, as reported
    return CorePlan(kept, partial, spans, zeros, shown, np.zeros(n_units, bool), unit_costs, 0)
