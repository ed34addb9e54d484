"""Budgeted selection: keep the best units under a token budget.

Greedy by score (a 0/1 knapsack heuristic that is exact when costs are equal): forced units
first, then units in descending score order while they fit; a unit that near-duplicates an
already kept unit is skipped.  Units that do not fit are passed over, so smaller ones later in
the order can still use the budget; a leftover can finally be spent on the leading words of the
best unit that did not fit.  The loop runs once per unit (not per token) and is deterministic:
ties keep the original order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """What the budget kept.

    Attributes:
        kept: ``(n_units,) bool`` units kept in full.
        partial_unit: Unit of which only the leading ``partial_words`` words are kept, or -1.
        partial_words: Number of leading words kept of ``partial_unit``.
        used_tokens: Tokens of everything kept.
        forced_tokens: Tokens of force-kept units.
        dedup_skipped_tokens: Tokens of units skipped as near-duplicates.
    """

    kept: np.ndarray
    partial_unit: int = -1
    partial_words: int = 0
    used_tokens: int = 0
    forced_tokens: int = 0
    dedup_skipped_tokens: int = 0


def select_units(
    scores: np.ndarray,
    costs: np.ndarray,
    budget: int,
    *,
    candidates: np.ndarray | None = None,
    forced: np.ndarray | None = None,
    duplicates: tuple[np.ndarray, np.ndarray] | None = None,
    word_costs: np.ndarray | None = None,
    min_fill_tokens: int = 1,
) -> Selection:
    """Choose units under ``budget``.

    Args:
        scores: ``(n,) float32`` higher is better.
        costs: ``(n,) int64`` tokens of each unit.
        budget: Token budget (>= 0).  Forced units are kept even beyond it.
        candidates: ``(n,) bool`` units that may be chosen (collapsed span members may not);
            ``None`` means all.
        forced: ``(n,) bool`` units kept regardless of budget and score.
        duplicates: CSR ``(indptr, indices)`` near-duplicate partners (see
            :func:`~semtoken_rag.core.redundancy.near_duplicate_pairs`), or ``None``.
        word_costs: ``list`` of ``(len_i,) int64`` per-word token costs of each unit, as one
            object array; enables the partial fill.  ``None`` disables it.
        min_fill_tokens: Smallest leftover worth a partial unit.

    Returns:
        A :class:`Selection`.
    """
    n = len(scores)
    kept = np.zeros(n, dtype=bool)
    if n == 0:
        return Selection(kept=kept)
    cand = np.ones(n, dtype=bool) if candidates is None else candidates.copy()
    blocked = np.zeros(n, dtype=bool)
    indptr, indices = duplicates if duplicates is not None else (None, None)
    costs_list = costs.tolist()

    def block_partners(i: int) -> None:
        if indptr is not None:
            blocked[indices[indptr[i] : indptr[i + 1]]] = True

    used = 0
    forced_tokens = 0
    if forced is not None and forced.any():
        for i in np.flatnonzero(forced).tolist():
            kept[i] = True
            used += costs_list[i]
            block_partners(i)
        forced_tokens = used
    skipped = 0
    first_unfit = -1
    order = np.argsort(-scores, kind="stable").tolist()
    cand_list = cand.tolist()
    for i in order:
        if kept[i] or not cand_list[i]:
            continue
        if blocked[i]:
            skipped += costs_list[i]
            continue
        c = costs_list[i]
        if used + c <= budget:
            kept[i] = True
            used += c
            block_partners(i)
        elif first_unfit < 0:
            first_unfit = i
    partial_unit, partial_words = -1, 0
    leftover = budget - used
    if word_costs is not None and first_unfit >= 0 and leftover >= min_fill_tokens:
        wc = np.cumsum(word_costs[first_unfit])
        k = int(np.searchsorted(wc, leftover, side="right"))
        if k > 0:
            partial_unit, partial_words = first_unfit, k
            used += int(wc[k - 1])
    return Selection(
        kept=kept,
        partial_unit=partial_unit,
        partial_words=partial_words,
        used_tokens=used,
        forced_tokens=forced_tokens,
        dedup_skipped_tokens=skipped,
    )
