"""The one budget rule over a whole context: :func:`select_units` jointly or chunk by chunk.

Why apart from the stages: both SemToken's own plan and a plan over external scores end here
(:mod:`semtoken_rag.core.pipeline`), so the two spend a budget identically; this module turns
the context's arrays into each group's :class:`~semtoken_rag.core.budget.UnitRules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.arrays import ContextArrays
from semtoken_rag.core.budget import CSR, UnitRules, select_units
from semtoken_rag.core.params import SelectionConfig


@dataclass(frozen=True)
class ContextRules:
    """What SemToken's stages add to the budget rule (all optional).

    Attributes:
        candidates: ``(U,) bool`` units that may be chosen (``None``: all).
        duplicates: CSR near-duplicate graph over the context's units, or ``None``.
        shingles: CSR word-shingle hashes of each unit, or ``None``.
        separator_cost: Tokens charged per separator between two kept pieces of a chunk.
    """

    candidates: np.ndarray | None = None
    duplicates: CSR | None = None
    shingles: CSR | None = None
    separator_cost: int = 0


def _unit_word_costs(ctx: ContextArrays) -> np.ndarray:
    """``(U,) object`` array of each unit's per-word costs (what the partial fill cuts)."""
    n_units = ctx.n_units
    ends = np.append(ctx.unit_starts[1:], len(ctx.word_costs))
    word_costs = np.empty(n_units, dtype=object)
    for i, (s, e) in enumerate(zip(ctx.unit_starts.tolist(), ends.tolist(), strict=False)):
        word_costs[i] = ctx.word_costs[s:e]
    return word_costs


def _groups(ctx: ContextArrays, budgets: np.ndarray) -> list[np.ndarray]:
    """Unit indices spent under each budget: all units, or those of each chunk."""
    if len(budgets) == 1:
        return [np.arange(ctx.n_units)]
    return [np.flatnonzero(ctx.unit_chunk == c) for c in range(len(budgets))]


def _group_rules(
    ctx: ContextArrays,
    idx: np.ndarray,
    params: SelectionConfig,
    rules: ContextRules,
    word_costs: np.ndarray | None,
) -> UnitRules:
    """The context's rules restricted to the units ``idx`` (renumbered from 0)."""
    cand = np.ones(ctx.n_units, dtype=bool) if rules.candidates is None else rules.candidates
    dups, shingles = rules.duplicates, rules.shingles
    return UnitRules(
        candidates=cand[idx],
        forced=ctx.forced[idx],
        duplicates=_restrict(dups, idx) if dups is not None else None,
        word_costs=word_costs[idx] if word_costs is not None else None,
        min_fill_tokens=params.min_fill_tokens,
        sep_cost=rules.separator_cost,
        unit_chunk=ctx.unit_chunk[idx],
        shingles=_restrict_shingles(shingles, idx) if shingles is not None else None,
        lexical_threshold=params.lexical_dedup_threshold,
    )


def select_context(
    ctx: ContextArrays,
    scores: np.ndarray,
    unit_costs: np.ndarray,
    budgets: np.ndarray,
    params: SelectionConfig,
    rules: ContextRules | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The one budget rule: :func:`~semtoken_rag.core.budget.select_units` over the joint
    context or each chunk.

    Args:
        ctx: The context's arrays.
        scores: ``(U,) float32`` higher is kept first.
        unit_costs: ``(U,) int64`` tokens of each unit.
        budgets: ``(1,)`` one joint budget, or ``(n_chunks,)`` one per chunk.
        params: The selection knobs (partial fill, lexical threshold).
        rules: Candidates, near-duplicates, shingles and the separator cost (``None``: none).

    Returns:
        ``(kept (U,) bool, partial (U,) int64 leading words of partly kept units, tokens
        skipped as near-duplicates)``.
    """
    rules = rules or ContextRules()
    n_units = ctx.n_units
    word_costs = _unit_word_costs(ctx) if params.fill_partial else None
    kept = np.zeros(n_units, dtype=bool)
    partial = np.zeros(n_units, dtype=np.int64)
    skipped = 0
    for g, idx in enumerate(_groups(ctx, budgets)):
        if len(idx) == 0:
            continue
        sel = select_units(
            scores[idx],
            unit_costs[idx],
            int(budgets[g]),
            _group_rules(ctx, idx, params, rules, word_costs),
        )
        kept[idx] = sel.kept
        if sel.partial_unit >= 0:
            partial[idx[sel.partial_unit]] = sel.partial_words
        skipped += sel.dedup_skipped_tokens
    return kept, partial, skipped


def _restrict(dups: CSR, idx: np.ndarray) -> CSR:
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


def _restrict_shingles(shingles: CSR, idx: np.ndarray) -> CSR:
    """The shingle CSR of the contiguous unit range ``idx`` (one chunk, or all units)."""
    indptr, hashes = shingles
    if len(idx) == len(indptr) - 1:
        return shingles
    a, b = int(idx[0]), int(idx[-1]) + 1
    return indptr[a : b + 1] - indptr[a], hashes[indptr[a] : indptr[b]]
