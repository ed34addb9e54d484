"""The per-unit view behind one compression (:class:`~semtoken_rag.results.Explanation`).

Kept apart from the engine: it only reads what the core decided (the plan) and where each unit
sits in its chunk, for heatmaps, debugging and the evaluation harness.  It takes the units'
character spans as an array rather than the prepared chunks, so it depends on the core alone
(:mod:`semtoken_rag.prepared` builds on it, never the other way round).
"""

from __future__ import annotations

import numpy as np

from semtoken_rag.core.arrays import ContextArrays, CorePlan
from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.results import Explanation


def explain_plan(
    plan: CorePlan,
    ctx: ContextArrays,
    unit_char_spans: np.ndarray,
) -> Explanation:
    """Per-unit scores and decisions of ``plan``.

    Args:
        plan: The core's decision for the context.
        ctx: The context arrays the plan was computed on.
        unit_char_spans: ``(U, 2) int64`` character span of each unit in its chunk, chunks in
            order (what a heatmap draws the decisions over).
    """
    span_sizes = np.diff(np.append(plan.span_starts, ctx.n_units))
    span_of_unit = np.repeat(np.arange(len(plan.span_starts)), span_sizes)
    return Explanation(
        unit_chunk=ctx.unit_chunk,
        unit_char_spans=unit_char_spans,
        unit_span=span_of_unit.astype(np.int64),
        unit_entropy=plan.span_entropy[span_of_unit] if ctx.n_units else plan.span_entropy,
        unit_density=span_entropy(ctx.word_vectors, ctx.unit_starts),
        unit_score=plan.unit_scores,
        unit_kept=plan.kept | (plan.partial > 0),
        unit_coarse=plan.coarse[span_of_unit] if ctx.n_units else plan.coarse,
        budget_choice=plan.budget_choice,
    )
