"""Stage 3 of the engine: a plan back to text, per chunk, with offsets and token counts.

Kept apart from the engine so that what a result *says* (kept tokens include the separators the
reader reads; offsets index the text as given) is decided in one place.
"""

from __future__ import annotations

import time

import numpy as np

from semtoken_rag.core.render import kept_word_ranges, render
from semtoken_rag.prepared import Plan
from semtoken_rag.results import ChunkResult, CompressionResult, StageTimings


def render_plan(plan: Plan, separator: str) -> CompressionResult:
    """The :class:`CompressionResult` of ``plan``.

    Args:
        plan: From :meth:`semtoken_rag.Compressor.plan`.
        separator: Put between two kept pieces of a chunk.
    """
    t0 = time.perf_counter()
    core, arrays = plan.core, plan.arrays
    span_of_unit = np.repeat(
        np.arange(len(core.span_starts)), np.diff(np.append(core.span_starts, arrays.n_units))
    )
    results = []
    unit_lo = 0
    for c in plan.context.chunks:
        sl = slice(unit_lo, unit_lo + c.n_units)
        kept = core.kept[sl]
        partial = core.partial[sl]
        pu = int(np.flatnonzero(partial)[0]) if partial.any() else -1
        ranges = kept_word_ranges(
            kept, c.unit_starts, c.n_words, pu, int(partial[pu]) if pu >= 0 else 0
        )
        text, offsets = render(c.text, c.word_spans, ranges, separator)
        word_kept = np.zeros(c.n_words, dtype=bool)
        for a, b in ranges.tolist():
            word_kept[a:b] = True
        kept_tokens = int(c.word_costs[word_kept].sum()) + plan.separator_cost * max(
            len(offsets) - 1, 0
        )
        ent = core.span_entropy[span_of_unit[sl]] if c.n_units else np.zeros(0)
        results.append(
            ChunkResult(
                text=text,
                offsets=offsets,
                original_tokens=int(c.word_costs.sum()),
                kept_tokens=kept_tokens,
                forced_tokens=int(core.unit_costs[sl][c.forced].sum()) if c.n_units else 0,
                n_units=c.n_units,
                n_units_kept=int(kept.sum()),
                span_entropy=float(ent.mean()) if c.n_units else 0.0,
            )
        )
        unit_lo += c.n_units
    core_ms = sum(v for k, v in plan.stage_ms.items() if k != "assemble")
    return CompressionResult(
        chunks=tuple(results),
        budget_tokens=int(plan.budgets.sum()),
        query=plan.query,
        dedup_saved_tokens=core.dedup_skipped_tokens,
        budget_choice=core.budget_choice,
        timings=StageTimings(
            segment_ms=plan.stage_ms.get("assemble", 0.0),
            core_ms=core_ms,
            render_ms=(time.perf_counter() - t0) * 1e3,
        ),
    )
