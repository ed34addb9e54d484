"""The per-unit view behind one compression (:class:`~semtoken_rag.results.Explanation`).

Kept apart from the engine: it only reads what the core decided (the plan) and where each unit
sits in its chunk, for heatmaps, debugging and the evaluation harness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.core.pipeline import ContextArrays, CorePlan
from semtoken_rag.results import Explanation

if TYPE_CHECKING:
    from semtoken_rag.prepared import PreparedChunk


def explain_plan(
    plan: CorePlan,
    ctx: ContextArrays,
    chunks: Sequence[PreparedChunk],
) -> Explanation:
    """Per-unit scores and decisions of ``plan``.

    Args:
        plan: The core's decision for the context.
        ctx: The context arrays the plan was computed on.
        chunks: The prepared chunks of the context (for the units' character offsets).
    """
    span_sizes = np.diff(np.append(plan.span_starts, ctx.n_units))
    span_of_unit = np.repeat(np.arange(len(plan.span_starts)), span_sizes)
    char_spans = [c.unit_char_spans() for c in chunks]
    return Explanation(
        unit_chunk=ctx.unit_chunk,
        unit_char_spans=np.concatenate(char_spans) if char_spans else np.zeros((0, 2), np.int64),
        unit_span=span_of_unit.astype(np.int64),
        unit_entropy=plan.span_entropy[span_of_unit] if ctx.n_units else plan.span_entropy,
        unit_density=span_entropy(ctx.word_vectors, ctx.unit_starts),
        unit_score=plan.unit_scores,
        unit_kept=plan.kept | (plan.partial > 0),
        unit_coarse=plan.coarse[span_of_unit] if ctx.n_units else plan.coarse,
    )
