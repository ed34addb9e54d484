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
from semtoken_rag.core.budget import UnitRules, keepable_units, select_context
from semtoken_rag.core.params import SelectionConfig


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
        keepable = keepable_units(ctx, scores, params, rules, rule.per_chunk)
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
