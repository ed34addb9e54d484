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
from semtoken_rag.core.budget import UnitRules, select_context
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
        keepable = keepable_units(ctx, scores, rules, params, rule.per_chunk)
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
    walk = _RepeatWalk(ctx, rules, params.lexical_dedup_threshold, per_chunk)
    if not len(walk.units):
        return keep
    order = np.argsort(np.argsort(selection_order(scores))[walk.units])
    for i in walk.units[ctx.forced[walk.units]].tolist():  # kept first, whatever they repeat
        walk.keep(i)
    forced, kept = ctx.forced.tolist(), keep.tolist()
    for i in walk.units[order].tolist():
        if forced[i] or not kept[i]:
            continue
        if walk.blocked[i] or walk.repeats_kept_text(i):
            keep[i] = False
        else:
            walk.keep(i)
    return keep


class _RepeatWalk:
    """The selection's repeat rules, walked over the only units they can concern: those with a
    near-duplicate, or with a word 3-gram (shingle) found in another unit.

    Why not a selection pass with every unit fitting: it loops over all units (what ``auto``
    adds to warm compression went from +2% to +12-18% with it); a unit without either is kept
    if it is a candidate, and keeping it blocks nothing.  The rules
    are :class:`~semtoken_rag.core.budget.UnitRules`' (``select_units`` applies them): a unit
    is skipped when a kept unit is its near-duplicate, or when at least ``lexical_threshold``
    of its shingles are in kept text; within its chunk with ``per_chunk``.
    """

    def __init__(
        self, ctx: ContextArrays, rules: UnitRules, threshold: float | None, per_chunk: bool
    ) -> None:
        n = ctx.n_units
        self.chunk: list[int] = (ctx.unit_chunk if per_chunk else np.zeros(n, np.int64)).tolist()
        touched = np.zeros(n, dtype=bool)
        self.dup_ptr: list[int] = []
        self.dup_all: list[int] = []
        if rules.duplicates is not None:  # Python lists: the walk reads them unit by unit
            touched |= np.diff(rules.duplicates[0]) > 0
            self.dup_ptr, self.dup_all = (a.tolist() for a in rules.duplicates)
        self.sh_ptr: list[int] = []
        self.sh_all: list[int] = []
        if rules.shingles is not None and threshold is not None:
            touched |= _shares_shingles(*rules.shingles)
            self.sh_ptr, self.sh_all = (a.tolist() for a in rules.shingles)
        self.threshold = float(threshold or 0.0)
        self.units = np.flatnonzero(touched)
        self.blocked = [False] * n
        self.seen: dict[int, set[int]] = {}

    def repeats_kept_text(self, i: int) -> bool:
        if not self.sh_ptr:
            return False
        own = self.sh_all[self.sh_ptr[i] : self.sh_ptr[i + 1]]
        seen = self.seen.get(self.chunk[i], set())
        return bool(own) and sum(1 for h in own if h in seen) >= self.threshold * len(own)

    def keep(self, i: int) -> None:
        c = self.chunk[i]
        if self.dup_ptr:
            for p in self.dup_all[self.dup_ptr[i] : self.dup_ptr[i + 1]]:
                self.blocked[p] = self.blocked[p] or self.chunk[p] == c
        if self.sh_ptr:
            self.seen.setdefault(c, set()).update(self.sh_all[self.sh_ptr[i] : self.sh_ptr[i + 1]])


def _shares_shingles(ptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(U,) bool`` units with a shingle found twice in the context (in another unit, or twice
    in their own: walking such a unit too changes nothing, and one sort finds them all)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    twice = np.zeros(len(v), dtype=bool)
    same = v[1:] == v[:-1]
    twice[1:] |= same
    twice[:-1] |= same
    owner = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return np.bincount(owner[order], weights=twice, minlength=len(ptr) - 1) > 0


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
