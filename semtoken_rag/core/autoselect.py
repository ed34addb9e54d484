"""The selection under the ``auto`` budget: the rule's budgets, the selection, what it covers.

Why apart from :mod:`semtoken_rag.core.adaptive`: the rule there is pure arithmetic over
matches and costs, while choosing *which* units it may pay for needs the selection itself
(:func:`~semtoken_rag.core.budget.select_context`, which imports the core's arrays, which
import the rule's :class:`~semtoken_rag.core.adaptive.BudgetChoice`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from semtoken_rag.core.adaptive import AdaptiveRule, BudgetChoice, adaptive_budgets, kept_coverage
from semtoken_rag.core.arrays import ContextArrays
from semtoken_rag.core.budget import CSR, UnitRules, select_context
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.scoring import selection_order


def select_auto(
    ctx: ContextArrays,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    rules: UnitRules,
    rule: AdaptiveRule,
    params: SelectionConfig,
    query_words: np.ndarray | None,
    matches: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, int, BudgetChoice, np.ndarray]:
    """:func:`select_context` under the ``auto`` rule, and the choice behind its budgets.

    The units the rule may pay for are those the selection keeps when every unit fits
    (:func:`keepable_units`), not all candidates: a unit skipped as a near-duplicate of a
    better ranked one is never kept, and counting its matches reported words as covered that
    no kept unit matched (the budget paid for it, the selection spent its tokens elsewhere).
    The coverage reported is then measured on what was kept (:func:`kept_coverage`).

    Args:
        rules: The selection's rules over the context (candidates, near-duplicates, shingles,
            separator cost).
        rule: The ``auto`` knobs, with the summary flag and separator cost set.
        query_words: ``(Q, d)`` query word fingerprints (``None``: no query).
        matches: ``(Q, U)`` word-unit matches, or ``None`` when there is nothing to cover
            (no query, a summary or coverage objective: the ceiling).

    Returns:
        ``(kept, partial, tokens skipped as near-duplicates, choice, budgets)``: the budgets
        ``(1,)`` joint or ``(n_chunks,)`` per chunk.
    """
    keepable = np.ones(ctx.n_units, bool) if rules.candidates is None else rules.candidates
    if matches is not None:
        keepable = keepable_units(ctx, scores, unit_costs, rules, params, rule.per_chunk)
    budgets, choice = adaptive_budgets(
        matches, scores, unit_costs, keepable, ctx.forced, ctx.unit_chunk, rule
    )
    rules = dataclasses.replace(rules, fill_small_budget=True)  # never an empty result
    kept, partial, skipped = select_context(ctx, scores, unit_costs, budgets, params, rules)
    if matches is not None and query_words is not None:
        in_part = partial_matches(ctx, query_words, partial)
        coverage = kept_coverage(matches, keepable, kept, rule.tolerance, in_part)
        choice = dataclasses.replace(choice, coverage=coverage)
    return kept, partial, skipped, choice, budgets


def keepable_units(
    ctx: ContextArrays,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    rules: UnitRules,
    params: SelectionConfig,
    per_chunk: bool,
) -> np.ndarray:
    """``(U,) bool`` the units :func:`select_context` keeps when every unit fits.

    Why this is exactly the set the ``auto`` rule may count on: the selection scans units by
    rank and stops at the first that does not fit, so at any budget it keeps a prefix (in rank
    order) of this set; a unit outside it is not a candidate, or a near-duplicate (by
    fingerprint or by repeated words; across chunks, or within its chunk as the scope says) of
    a better ranked unit that is always kept before it.
    """
    keep = np.ones(ctx.n_units, bool) if rules.candidates is None else rules.candidates.copy()
    keep |= ctx.forced
    if _repeats_may_skip(rules, params.lexical_dedup_threshold):  # the selection itself
        n_groups = int(ctx.unit_chunk[-1]) + 1 if per_chunk else 1
        unlimited = int(unit_costs.sum()) + rules.sep_cost * (ctx.n_units + 1) + 1
        budgets = np.full(n_groups, unlimited, dtype=np.int64)
        whole = params.replace(fill_partial=False)  # nothing is cut when every unit fits
        return select_context(ctx, scores, unit_costs, budgets, whole, rules)[0]
    if rules.duplicates is not None and len(rules.duplicates[1]):
        _drop_blocked(keep, ctx, scores, rules.duplicates, per_chunk)
    return keep


def _drop_blocked(
    keep: np.ndarray, ctx: ContextArrays, scores: np.ndarray, dups: CSR, per_chunk: bool
) -> None:
    """Unset in ``keep`` the candidates the selection skips as near-duplicates of a unit kept
    before them (force-kept first, then by rank), as :func:`select_units` decides it.

    Why not the selection itself: only units with a near-duplicate can be skipped, usually a
    few, while a selection pass with every unit fitting loops over all of them (it raised the
    ``auto`` overhead on warm compression from +2% to +12-18%).
    """
    indptr, indices = dups
    forced = ctx.forced
    blocked = np.zeros(len(keep), dtype=bool)

    def keep_unit(i: int) -> None:  # block its near-duplicates (within its chunk, per chunk)
        partners = indices[indptr[i] : indptr[i + 1]]
        if per_chunk:
            partners = partners[ctx.unit_chunk[partners] == ctx.unit_chunk[i]]
        blocked[partners] = True

    paired = np.flatnonzero(np.diff(indptr) > 0)
    for i in paired[forced[paired]].tolist():
        keep_unit(i)
    for i in paired[np.argsort(np.argsort(selection_order(scores))[paired])].tolist():
        if forced[i] or not keep[i]:
            continue
        if blocked[i]:
            keep[i] = False
        else:
            keep_unit(i)


def _repeats_may_skip(rules: UnitRules, lexical_threshold: float | None) -> bool:
    """Whether the selection may skip a unit as a repeat of kept *text*: one with at least
    ``lexical_threshold`` of its shingles found in other units (else only near-duplicate
    fingerprints can make it skip one, which :func:`_drop_blocked` follows cheaply).
    """
    if rules.shingles is None or lexical_threshold is None:
        return False
    if lexical_threshold <= 0:
        return True
    ptr, values = rules.shingles
    sizes = np.diff(ptr)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    order = np.lexsort((owner, values))
    v, o = values[order], owner[order]
    new_value = np.r_[True, v[1:] != v[:-1]]
    new_owner = new_value | np.r_[True, o[1:] != o[:-1]]
    run = np.cumsum(new_value) - 1
    shared = np.bincount(run, weights=new_owner)[run] > 1  # the value is in another unit too
    in_others = np.bincount(o, weights=shared, minlength=len(sizes))
    return bool(((in_others >= lexical_threshold * sizes) & (sizes > 0)).any())


def partial_matches(
    ctx: ContextArrays, query_words: np.ndarray, partial: np.ndarray
) -> np.ndarray | None:
    """``(Q,)`` each query word's best match among the leading words kept of partly kept
    units (``partial``: words kept per unit), or ``None`` when no unit is kept in part."""
    units = np.flatnonzero(partial)
    if not len(units):
        return None
    starts = ctx.unit_starts[units].tolist()
    words = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, partial[units].tolist())])
    sims = query_words.astype(np.float32) @ ctx.word_vectors[words].astype(np.float32).T
    return sims.max(axis=1)
