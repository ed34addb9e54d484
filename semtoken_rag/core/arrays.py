"""The core's input and output for one context: :class:`ContextArrays` in, :class:`CorePlan` out.

Kept apart from the stages so the pipeline, the budget and the engine import them without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.adaptive import BudgetChoice


@dataclass(frozen=True)
class ContextArrays:
    """Everything the core needs about one context.

    Attributes:
        word_vectors: ``(W, d) float32`` L2-normalised word fingerprints, chunks concatenated.
        word_costs: ``(W,) int64`` tokens of each word in the counting tokenizer.
        unit_starts: ``(U,) int64`` first (global) word of each unit.
        unit_chunk: ``(U,) int64`` chunk index of each unit (non-decreasing).
        forced: ``(U,) bool`` units force-kept by a rule.
        word_ids: ``(W,) uint64`` normalised word ids (lexical repeat check; ``None``: off).
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
        budget_choice: How the ``auto`` rule chose the budget (``None`` for a fixed budget).
        budgets: ``(G,) int64`` budgets the ``auto`` rule chose (per chunk with
            ``budget_scope="per_chunk"``; ``None`` for a fixed budget).
    """

    kept: np.ndarray
    partial: np.ndarray
    span_starts: np.ndarray
    span_entropy: np.ndarray
    unit_scores: np.ndarray
    coarse: np.ndarray
    unit_costs: np.ndarray
    dedup_skipped_tokens: int
    budget_choice: BudgetChoice | None = None
    budgets: np.ndarray | None = None

    @property
    def span_of_unit(self) -> np.ndarray:
        """``(U,) int64`` span of each unit (spans are runs of units from ``span_starts``)."""
        sizes = np.diff(np.append(self.span_starts, len(self.kept)))
        return np.repeat(np.arange(len(self.span_starts), dtype=np.int64), sizes)


def empty_plan() -> CorePlan:
    """The plan of a context without units."""
    b, i, f = (np.zeros(0, dtype=t) for t in (bool, np.int64, np.float32))
    return CorePlan(b, i, i, f, f, b, i, 0)
