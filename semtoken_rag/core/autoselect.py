"""The selection under the ``auto`` budget: the rule's budgets, the selection, what it covers.

Apart from :mod:`semtoken_rag.core.adaptive` (pure arithmetic) because choosing *which* units
it may pay for needs :func:`~semtoken_rag.core.budget.select_context` (an import cycle there).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from semtoken_rag.core.adaptive import AdaptiveRule, BudgetChoice, adaptive_budgets, kept_coverage
from semtoken_rag.core.arrays import ContextArrays
from semtoken_rag.core.budget import CSR, UnitRules, select_context
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.redundancy import lexical_suspects
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

    The rule pays only for units the selection keeps when every unit fits
    (:func:`keepable_units`): a near-duplicate of a better ranked unit is never kept, so its
    matches must not count. Coverage is then measured on what was kept (:func:`kept_coverage`).

    Args:
        rules: The selection's rules over the context.
        rule: The ``auto`` knobs, with the summary flag and separator cost set.
        query_words: ``(Q, d)`` query word fingerprints (``None``: no query).
        matches: ``(Q, U)`` word-unit matches, or ``None``: nothing to cover (the ceiling).

    Returns:
        ``(kept, partial, skipped tokens, choice, budgets (1,) or (n_chunks,))``.
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


def keepable_units(
    ctx: ContextArrays,
    scores: np.ndarray,
    params: SelectionConfig,
    rules: UnitRules,
    per_chunk: bool,
) -> np.ndarray:
    """``(U,) bool`` the units :func:`select_context` keeps when every unit fits.

    Candidates and forced units, less repeats of better ranked ones (per chunk or jointly).
    Cheaper than an unlimited selection: only units with a near-duplicate or
    :func:`lexical_suspects` are walked, in selection order, by ``_Kept.repeats``'s rule."""
    keep = np.ones(ctx.n_units, bool) if rules.candidates is None else rules.candidates.copy()
    keep |= ctx.forced
    dups, shingles = rules.duplicates, rules.shingles
    threshold = params.lexical_dedup_threshold if shingles is not None else None
    walked = np.diff(dups[0]) > 0 if dups is not None else np.zeros(ctx.n_units, bool)
    if shingles is not None and threshold is not None:
        walked |= lexical_suspects(*shingles, threshold)
    units = np.flatnonzero(walked)
    groups = [units] if len(units) else []  # jointly, or each chunk's walked units
    if per_chunk and len(units):
        groups = np.split(units, np.flatnonzero(np.diff(ctx.unit_chunk[units])) + 1)
    for group in groups:
        forced, rest = group[ctx.forced[group]], group[~ctx.forced[group]]
        order = rest[selection_order(scores[rest])].tolist()
        _walk(
            forced.tolist(), order, keep, dups, None if threshold is None else shingles, threshold
        )
    return keep


def _walk(
    forced: list[int],
    order: list[int],
    keep: np.ndarray,
    dups: CSR | None,
    shingles: CSR | None,
    threshold: float | None,
) -> None:
    """Keep ``forced``, then ``order`` unless a unit repeats kept ones (unset in ``keep``)."""
    blocked: set[int] = set()
    seen: set[int] = set()
    for n, i in enumerate(forced + order):
        own = [] if shingles is None else shingles[1][shingles[0][i] : shingles[0][i + 1]].tolist()
        if n >= len(forced) and keep[i]:
            hits = sum(h in seen for h in own)
            if i in blocked or (own and hits >= (threshold or 0.0) * len(own)):
                keep[i] = False
        if keep[i]:
            seen.update(own)
            if dups is not None:
                blocked.update(dups[1][dups[0][i] : dups[0][i + 1]].tolist())
