"""The one budget rule: keep the best units under a token budget, jointly or chunk by chunk.

Prefix-closed greedy: forced units first, then units by descending score (ties in order) while
they fit; the scan *stops* at the first unit that does not fit and spends the leftover on its
leading words (the partial fill). Near-duplicates of kept units are skipped at no cost. Stopping
makes the kept set at a budget a subset of the kept set at any larger one. Without a separator
the kept *tokens* never decrease either; with one they can: a unit that joins two kept pieces
removes the separator between them, which may cost more than the unit itself. With ``sep_cost``
each unit is charged the separators its piece adds, so the output stays within the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.arrays import ContextArrays
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.scoring import selection_order

#: A CSR graph ``(indptr (n+1,) int64, values)``: row ``i`` is ``values[indptr[i]:indptr[i+1]]``.
CSR = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Selection:
    """What the budget kept.

    Attributes:
        kept: ``(n_units,) bool`` units kept in full.
        partial_unit: Unit of which only the leading ``partial_words`` words are kept, or -1.
        partial_words: Leading words kept of ``partial_unit``.
        used_tokens: Tokens of everything kept (separators included).
        forced_tokens: Tokens of force-kept units.
        dedup_skipped_tokens: Tokens of units skipped as near-duplicates.
    """

    kept: np.ndarray
    partial_unit: int = -1
    partial_words: int = 0
    used_tokens: int = 0
    forced_tokens: int = 0
    dedup_skipped_tokens: int = 0


@dataclass(frozen=True)
class UnitRules:
    """Everything besides scores, costs and the budget that shapes :func:`select_units`.

    Each rule defaults to "off" (``None``), so a caller names only what it uses.

    Attributes:
        candidates: ``(n,) bool`` units that may be chosen (collapsed span members may not).
        forced: ``(n,) bool`` units kept regardless of budget and score.
        duplicates: CSR near-duplicate partners (:mod:`~semtoken_rag.core.redundancy`).
        word_costs: ``(n,) object`` each unit's ``(len_i,) int64`` word costs (partial fill).
        min_fill_tokens: Smallest leftover worth a partial unit.
        sep_cost: Tokens of the separator rendered between two kept pieces of one chunk.
        unit_chunk: ``(n,) int64`` chunk of each unit (non-decreasing).
        shingles: CSR word-shingle hashes of each unit (:mod:`~semtoken_rag.core.redundancy`).
        lexical_threshold: Skip a unit when this fraction of its shingles is in kept units.
        fill_small_budget: A budget below ``min_fill_tokens`` may still fill a partial unit, or
            else take the best unit that fits whole (``auto`` never returns nothing).
    """

    candidates: np.ndarray | None = None
    forced: np.ndarray | None = None
    duplicates: CSR | None = None
    word_costs: np.ndarray | None = None
    min_fill_tokens: int = 1
    sep_cost: int = 0
    unit_chunk: np.ndarray | None = None
    shingles: CSR | None = None
    lexical_threshold: float | None = None
    fill_small_budget: bool = False


class _Kept:
    """The units kept so far (flags, pieces per chunk, seen shingles, blocked duplicates)."""

    def __init__(self, n: int, rules: UnitRules) -> None:
        self.blocked = np.zeros(n, dtype=bool)
        self.flags = [False] * n
        self.sep_cost = rules.sep_cost
        self.duplicates = rules.duplicates
        chunk = np.asarray(np.zeros(n) if rules.unit_chunk is None else rules.unit_chunk, np.int64)
        self.chunk = chunk.tolist()
        # joins[i]: unit i and unit i + 1 render as one piece when both are kept.
        self.joins = [*(chunk[1:] == chunk[:-1]).tolist(), False]
        self.pieces = dict.fromkeys(self.chunk, 0)  # per chunk of the group (not 0..max)
        self.lexical = rules.shingles is not None and rules.lexical_threshold is not None
        self.threshold = float(rules.lexical_threshold or 0.0)
        self.seen: set[int] = set()
        shingles = rules.shingles if self.lexical else None
        self.sh_ptr: list[int] = shingles[0].tolist() if shingles is not None else []
        self.sh_all: list[int] = shingles[1].tolist() if shingles is not None else []

    def _neighbours_kept(self, i: int, right: bool) -> tuple[bool, bool]:
        left_kept = i > 0 and self.joins[i - 1] and self.flags[i - 1]
        right_kept = right and self.joins[i] and self.flags[i + 1]
        return left_kept, right_kept

    def sep_delta(self, i: int, right: bool = True) -> int:
        """Separator tokens added by keeping unit ``i`` (its leading words if not ``right``)."""
        if not self.sep_cost:
            return 0
        left_kept, right_kept = self._neighbours_kept(i, right)
        c = self.chunk[i]
        new = self.pieces[c] + 1 - int(left_kept) - int(right_kept)
        return self.sep_cost * (max(new - 1, 0) - max(self.pieces[c] - 1, 0))

    def repeats(self, i: int) -> bool:
        """Whether unit ``i`` repeats kept text (a kept near-duplicate, or its shingles)."""
        if self.blocked[i]:
            return True
        if not self.lexical:
            return False
        own = self.sh_all[self.sh_ptr[i] : self.sh_ptr[i + 1]]
        if not own:
            return False
        hit = sum(1 for h in own if h in self.seen)
        return hit >= self.threshold * len(own)

    def keep(self, i: int) -> None:
        left_kept, right_kept = self._neighbours_kept(i, True)
        self.pieces[self.chunk[i]] += 1 - int(left_kept) - int(right_kept)
        self.flags[i] = True
        if self.lexical:
            self.seen.update(self.sh_all[self.sh_ptr[i] : self.sh_ptr[i + 1]])
        if self.duplicates is not None:
            indptr, indices = self.duplicates
            self.blocked[indices[indptr[i] : indptr[i + 1]]] = True


def _keep_forced(state: _Kept, forced: np.ndarray | None, costs: list[int]) -> tuple[int, int]:
    """Keep every forced unit, in order; returns ``(used tokens, forced tokens)``."""
    used = forced_tokens = 0
    for i in [] if forced is None else np.flatnonzero(forced).tolist():
        used += costs[i] + state.sep_delta(i)
        forced_tokens += costs[i]
        state.keep(i)
    return used, forced_tokens


def _greedy(
    state: _Kept,
    scores: np.ndarray,
    costs: list[int],
    candidates: list[bool],
    budget: int,
    used: int,
) -> tuple[int, int, int]:
    """Keep units by descending score until one does not fit; ``(used, skipped, stop or -1)``."""
    skipped = 0
    for i in selection_order(scores).tolist():
        if state.flags[i] or not candidates[i]:
            continue
        if state.repeats(i):
            skipped += costs[i]
            continue
        c = costs[i] + state.sep_delta(i)
        if used + c > budget:
            return used, skipped, i
        used += c
        state.keep(i)
    return used, skipped, -1


def _partial_fill(
    state: _Kept, rules: UnitRules, stop: int, budget: int, used: int
) -> tuple[int, int, int]:
    """Spend the leftover on ``stop``'s leading words; ``(partial unit or -1, words, used)``."""
    if rules.word_costs is None or stop < 0:
        return -1, 0, used
    leftover = budget - used - state.sep_delta(stop, right=False)
    wc = np.cumsum(rules.word_costs[stop])[:-1]  # never all words: the unit did not fit
    k = int(np.searchsorted(wc, leftover, side="right"))
    if leftover < rules.min_fill_tokens or k <= 0:
        return -1, 0, used
    return stop, k, used + int(wc[k - 1]) + state.sep_delta(stop, right=False)


def _first_fit(
    state: _Kept, scores: np.ndarray, costs: list[int], candidates: np.ndarray, budget: int
) -> int:
    """Keep the best unit that fits whole (``fill_small_budget``); returns its tokens."""
    for i in selection_order(scores).tolist():
        c = costs[i] + state.sep_delta(i)
        if candidates[i] and not state.blocked[i] and c <= budget:
            state.keep(i)
            return c
    return 0


def select_units(
    scores: np.ndarray, costs: np.ndarray, budget: int, rules: UnitRules | None = None
) -> Selection:
    """Choose units under ``budget``.

    Args:
        scores: ``(n,) float32`` higher is better.
        costs: ``(n,) int64`` tokens of each unit.
        budget: Token budget (>= 0); forced units are kept even beyond it.
        rules: See :class:`UnitRules`; ``None``: none of them.

    Returns:
        A :class:`Selection`.
    """
    rules = rules or UnitRules()
    n = len(scores)
    state = _Kept(n, rules)
    costs_list = costs.tolist()
    cand = np.ones(n, dtype=bool) if rules.candidates is None else rules.candidates
    used, forced_tokens = _keep_forced(state, rules.forced, costs_list)
    used, skipped, stop = _greedy(state, scores, costs_list, cand.tolist(), budget, used)
    partial_unit, partial_words, used = _partial_fill(state, rules, stop, budget, used)
    nothing_kept = partial_unit < 0 and not any(state.flags)
    if rules.fill_small_budget and rules.word_costs is not None and nothing_kept:
        used += _first_fit(state, scores, costs_list, cand, budget)
    return Selection(
        kept=np.array(state.flags, dtype=bool),
        partial_unit=partial_unit,
        partial_words=partial_words,
        used_tokens=used,
        forced_tokens=forced_tokens,
        dedup_skipped_tokens=skipped,
    )


def _restrict(graph: CSR, a: int, b: int, renumber: bool) -> CSR:
    """Rows ``[a, b)`` of a CSR graph; ``renumber``: values outside dropped, the rest ``-a``."""
    indptr, values = graph
    if b - a == len(indptr) - 1:
        return graph
    ptr, vals = indptr[a : b + 1] - indptr[a], values[indptr[a] : indptr[b]]
    if not renumber:
        return ptr, vals
    inside = (vals >= a) & (vals < b)
    rows = np.repeat(np.arange(b - a), np.diff(ptr))[inside]
    ptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=b - a))].astype(np.int64)
    return ptr, (vals[inside] - a).astype(np.int64)


def _group_rules(
    ctx: ContextArrays,
    idx: np.ndarray,
    params: SelectionConfig,
    rules: UnitRules,
    word_costs: np.ndarray | None,
    budget: int,
    small: bool,
) -> UnitRules:
    """The rules for the contiguous units ``idx`` (renumbered from 0) under ``budget``;
    ``small``: the fill may take the whole budget."""
    dups, shingles = rules.duplicates, rules.shingles
    a, b = int(idx[0]), int(idx[-1]) + 1
    return UnitRules(
        candidates=None if rules.candidates is None else rules.candidates[idx],
        forced=ctx.forced[idx],
        duplicates=_restrict(dups, a, b, renumber=True) if dups is not None else None,
        word_costs=word_costs[idx] if word_costs is not None else None,
        min_fill_tokens=min(params.min_fill_tokens, max(budget, 1))
        if small
        else params.min_fill_tokens,
        sep_cost=rules.sep_cost,
        fill_small_budget=rules.fill_small_budget,
        unit_chunk=ctx.unit_chunk[idx],
        shingles=_restrict(shingles, a, b, renumber=False) if shingles is not None else None,
        lexical_threshold=params.lexical_dedup_threshold,
    )


def select_context(
    ctx: ContextArrays,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    budgets: np.ndarray,
    params: SelectionConfig,
    rules: UnitRules,
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`select_units` over the joint context or each chunk.

    Args:
        scores: ``(U,) float32`` higher is kept first.
        unit_costs: ``(U,) int64`` tokens of each unit.
        budgets: ``(1,)`` one joint budget, or ``(n_chunks,)`` one per chunk.
        params: The selection knobs (partial fill, lexical threshold).
        rules: ``candidates``, ``duplicates``, ``shingles``, ``sep_cost``,
            ``fill_small_budget`` over the whole context (the rest from ``ctx``, ``params``).

    Returns:
        ``(kept (U,) bool, partial (U,) int64 leading words of partly kept units, tokens
        skipped as near-duplicates)``.
    """
    n_units = ctx.n_units
    word_costs = None
    if params.fill_partial:  # each unit's per-word costs, what the partial fill cuts
        pieces = np.split(ctx.word_costs, ctx.unit_starts)[1:]
        word_costs = np.fromiter(pieces, dtype=object, count=n_units)
    if len(budgets) == 1:
        groups = [np.arange(n_units)]
    else:  # unit_chunk is non-decreasing: a range per chunk
        cuts = np.searchsorted(ctx.unit_chunk, np.arange(1, len(budgets)))
        groups = np.split(np.arange(n_units), cuts)
    kept = np.zeros(n_units, dtype=bool)
    partial = np.zeros(n_units, dtype=np.int64)
    skipped = 0
    # A chunk's share below ``min_fill_tokens`` is spent anyway, or many short chunks keep nothing.
    small = rules.fill_small_budget or len(groups) > 1
    for g, idx in enumerate(groups):
        if len(idx) == 0:
            continue
        group_rules = _group_rules(ctx, idx, params, rules, word_costs, int(budgets[g]), small)
        sel = select_units(scores[idx], unit_costs[idx], int(budgets[g]), group_rules)
        kept[idx] = sel.kept
        if sel.partial_unit >= 0:
            partial[idx[sel.partial_unit]] = sel.partial_words
        skipped += sel.dedup_skipped_tokens
    return kept, partial, skipped
