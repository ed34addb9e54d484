"""Budgeted selection: keep the best units under a token budget.

Prefix-closed greedy by score: forced units first, then units in descending score order while
they fit; the scan *stops* at the first unit that does not fit, and the leftover is spent on the
leading words of that unit (the partial fill).  A unit that near-duplicates an already kept unit
(by fingerprint, or because its words mostly repeat kept text) is skipped (it costs nothing).
Stopping rather than passing over a unit that does not fit makes
the kept set at a budget a subset of the kept set at any larger budget, so a larger ratio never
keeps fewer tokens (a skip-and-continue knapsack heuristic breaks that: a small budget can be
filled by small low-ranked units that a larger budget spends on one big unit).

Separators: when ``sep_cost`` is given, each unit is charged the separators its piece adds to
the rendered text (kept pieces minus one, per chunk), so the rendered output, separators
included, stays within the budget.  The loop runs once per unit (not per token) and is
deterministic: ties keep the original order.
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
        used_tokens: Tokens of everything kept (separators included when ``sep_cost`` is set).
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
    sep_cost: int = 0,
    unit_chunk: np.ndarray | None = None,
    shingles: tuple[np.ndarray, np.ndarray] | None = None,
    lexical_threshold: float | None = None,
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
        sep_cost: Tokens of the separator rendered between two kept pieces of one chunk.
        unit_chunk: ``(n,) int64`` chunk of each unit (non-decreasing); units ``i`` and ``i+1``
            render as one piece only when both are kept and in the same chunk.  ``None`` means
            one chunk.
        shingles: CSR ``(indptr, hashes)`` word-shingle hashes of each unit (see
            :func:`~semtoken_rag.core.redundancy.unit_shingles`), or ``None``.
        lexical_threshold: Skip a unit when at least this fraction of its shingles already
            occur in kept units (verbatim or partial repeats); ``None`` disables the check.

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
    chunk = np.zeros(n, dtype=np.int64) if unit_chunk is None else np.asarray(unit_chunk, np.int64)
    chunk_list = chunk.tolist()
    # joins[i]: unit i and unit i + 1 render as one piece when both are kept.
    joins = [*(chunk[1:] == chunk[:-1]).tolist(), False]
    pieces = [0] * (int(chunk.max()) + 1 if n else 1)
    kept_list = [False] * n
    lexical = shingles is not None and lexical_threshold is not None
    seen: set[int] = set()
    sh_ptr: list[int] = shingles[0].tolist() if lexical and shingles is not None else []
    sh_all: list[int] = shingles[1].tolist() if lexical and shingles is not None else []

    def repeats_kept_text(i: int) -> bool:
        own = sh_all[sh_ptr[i] : sh_ptr[i + 1]]
        if not own:
            return False
        hit = sum(1 for h in own if h in seen)
        return hit >= float(lexical_threshold or 0.0) * len(own)

    def sep_delta(i: int, right: bool = True) -> int:
        """Separator tokens added by keeping unit ``i`` (its leading words if not ``right``)."""
        if not sep_cost:
            return 0
        left_kept = i > 0 and joins[i - 1] and kept_list[i - 1]
        right_kept = right and joins[i] and kept_list[i + 1]
        c = chunk_list[i]
        new = pieces[c] + 1 - int(left_kept) - int(right_kept)
        return sep_cost * (max(new - 1, 0) - max(pieces[c] - 1, 0))

    def keep(i: int) -> None:
        c = chunk_list[i]
        left_kept = i > 0 and joins[i - 1] and kept_list[i - 1]
        right_kept = joins[i] and kept_list[i + 1]
        pieces[c] += 1 - int(left_kept) - int(right_kept)
        kept_list[i] = True
        kept[i] = True
        if lexical:
            seen.update(sh_all[sh_ptr[i] : sh_ptr[i + 1]])
        if indptr is not None and indices is not None:
            blocked[indices[indptr[i] : indptr[i + 1]]] = True

    used = 0
    forced_tokens = 0
    if forced is not None and forced.any():
        for i in np.flatnonzero(forced).tolist():
            used += costs_list[i] + sep_delta(i)
            forced_tokens += costs_list[i]
            keep(i)
    skipped = 0
    stop = -1
    # Scores are rounded before ordering: identical units (repeated chunks) can differ in the last
    # bits of a BLAS product, and a tie must go to the earlier unit, not to float noise.
    order = np.argsort(-np.round(scores.astype(np.float64), 5), kind="stable").tolist()
    cand_list = cand.tolist()
    for i in order:
        if kept_list[i] or not cand_list[i]:
            continue
        if blocked[i] or (lexical and repeats_kept_text(i)):
            skipped += costs_list[i]
            continue
        c = costs_list[i] + sep_delta(i)
        if used + c > budget:
            stop = i
            break
        used += c
        keep(i)
    partial_unit, partial_words = -1, 0
    if word_costs is not None and stop >= 0:
        leftover = budget - used - sep_delta(stop, right=False)
        if leftover >= min_fill_tokens:
            wc = np.cumsum(word_costs[stop])[:-1]  # never all words: the unit did not fit
            k = int(np.searchsorted(wc, leftover, side="right"))
            if k > 0:
                partial_unit, partial_words = stop, k
                used += int(wc[k - 1]) + sep_delta(stop, right=False)
    return Selection(
        kept=kept,
        partial_unit=partial_unit,
        partial_words=partial_words,
        used_tokens=used,
        forced_tokens=forced_tokens,
        dedup_skipped_tokens=skipped,
    )
