"""The engine's intermediate results (of :meth:`Compressor.prepare` and :meth:`Compressor.plan`)
and stage 3, :func:`render_plan`.

Public so the stages can be called one by one (prepare once, plan for many questions or budgets,
inspect a plan, rank units externally) and benchmarks measure the real stages.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from semtoken_rag.core.arrays import ContextArrays, CorePlan
from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.core.render import kept_word_ranges, render
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.inputs import check_strings
from semtoken_rag.results import ChunkResult, CompressionResult, Explanation, StageTimings


@dataclass(frozen=True, eq=False)
class PreparedChunk:
    """One chunk, segmented, costed and (usually) fingerprinted; independent of any query.

    Attributes:
        text: The chunk exactly as given (pieces are rendered from it verbatim).
        word_spans: ``(W, 2) int64`` character spans of its words.
        unit_starts: ``(U,) int64`` first word of each unit (sentence).
        word_costs: ``(W,) int64`` tokens of each word in the counting tokenizer.
        forced: ``(U,) bool`` units overlapping a force-keep match.
        word_ids: ``(W,) uint64`` normalised word ids for the lexical repeat check, or ``None``.
        fingerprints: Word fingerprints, or ``None`` (prepared without the encoder).
    """

    text: str
    word_spans: np.ndarray
    unit_starts: np.ndarray
    word_costs: np.ndarray
    forced: np.ndarray
    word_ids: np.ndarray | None
    fingerprints: ChunkFingerprints | None = None

    @property
    def n_words(self) -> int:
        return len(self.word_spans)

    @property
    def n_units(self) -> int:
        return len(self.unit_starts)

    def unit_char_spans(self) -> np.ndarray:
        """``(U, 2) int64`` character span of each unit in :attr:`text`."""
        if not self.n_units:
            return np.zeros((0, 2), dtype=np.int64)
        ends = np.append(self.unit_starts[1:], self.n_words) - 1
        return np.stack(
            [self.word_spans[self.unit_starts, 0], self.word_spans[ends, 1]], axis=1
        ).astype(np.int64)


@dataclass(frozen=True, eq=False)
class PreparedContext:
    """The chunks of one context, prepared (the output of :meth:`Compressor.prepare`).

    Attributes:
        chunks: One :class:`PreparedChunk` per input chunk, in order.
        encoder_calls: Chunks that needed an encoder pass (0 when the store had them all).
        encode_ms: Time spent encoding (or reading the store, see ``store_ms``).
        store_ms: Time spent in store lookups when nothing had to be encoded.
        count_ms: Time spent segmenting, counting tokens and matching force-keep rules.
    """

    chunks: tuple[PreparedChunk, ...]
    encoder_calls: int = 0
    encode_ms: float = 0.0
    store_ms: float = 0.0
    count_ms: float = 0.0

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def has_fingerprints(self) -> bool:
        return all(c.fingerprints is not None for c in self.chunks)

    def subset(self, texts: Sequence[str]) -> PreparedContext:
        """The context of ``texts`` (each one of this context's chunks; duplicates allowed),
        sharing the prepared arrays: how one batched ``prepare`` serves many requests.

        Raises:
            InvalidInputError: a text that is not one of this context's chunks.
        """
        texts = check_strings(texts, "texts")
        by_text = {c.text: c for c in self.chunks}
        missing = next((t for t in texts if t not in by_text), None)
        if missing is not None:
            raise InvalidInputError(f"subset: {missing!r:.80} is not a chunk of this context")
        return PreparedContext(tuple(by_text[t] for t in texts))

    def unit_char_spans(self) -> np.ndarray:
        """``(U, 2) int64`` character span of every unit in its chunk, chunks in order."""
        spans = [c.unit_char_spans() for c in self.chunks]
        return np.concatenate(spans) if spans else np.zeros((0, 2), np.int64)

    def unit_texts(self) -> list[str]:
        """Verbatim text of every unit, chunks in order (what an external scorer ranks)."""
        return [c.text[s:e] for c in self.chunks for s, e in c.unit_char_spans().tolist()]

    def arrays(self, dim: int) -> ContextArrays:
        """The chunks concatenated into the core's :class:`ContextArrays`.

        Args:
            dim: Fingerprint dimension (0 when prepared without fingerprints).

        Raises:
            InvalidInputError: fingerprints of another dimension (from another encoder).
        """
        got = {c.fingerprints.dim for c in self.chunks if c.fingerprints is not None}
        if self.has_fingerprints and got - {dim}:
            raise InvalidInputError(
                f"this context holds fingerprints of dimension {sorted(got)}, the encoder {dim}: "
                "plan it with the compressor that prepared it"
            )
        items = self.chunks
        if not items:
            empty = np.zeros(0, np.int64)
            return ContextArrays(
                np.zeros((0, dim), np.float32), empty, empty, empty, empty > 0, None
            )
        offsets = np.cumsum([0] + [c.n_words for c in items])
        vectors = (
            np.concatenate([c.fingerprints.vectors for c in items if c.fingerprints is not None])
            if self.has_fingerprints
            else np.zeros((int(offsets[-1]), 0), np.float32)
        )
        ids = [c.word_ids for c in items]
        return ContextArrays(
            word_vectors=vectors,
            word_costs=np.concatenate([c.word_costs for c in items]).astype(np.int64),
            unit_starts=np.concatenate(
                [c.unit_starts + o for c, o in zip(items, offsets, strict=False)]
            ).astype(np.int64),
            unit_chunk=np.repeat(np.arange(len(items), dtype=np.int64), [c.n_units for c in items]),
            forced=np.concatenate([c.forced for c in items]).astype(bool),
            word_ids=(
                np.concatenate([i for i in ids if i is not None]).astype(np.uint64)
                if all(i is not None for i in ids)
                else None
            ),
        )


@dataclass(frozen=True, eq=False)
class Plan:
    """What would be kept of one context and why (the output of :meth:`Compressor.plan`).

    Attributes:
        context: The prepared chunks.
        query: The query the plan is conditioned on (``None``: none).
        budgets: ``(1,)`` joint budget or ``(n_chunks,)`` per-chunk budgets, in tokens.
        arrays: The core's input arrays.
        core: The core's decision (kept units, partial unit, spans, scores).
        separator_cost: Tokens charged per separator between kept pieces.
        stage_ms: Milliseconds per core stage, plus ``assemble`` (building the arrays).
    """

    context: PreparedContext
    query: str | None
    budgets: np.ndarray
    arrays: ContextArrays
    core: CorePlan
    separator_cost: int = 0
    stage_ms: dict[str, float] = field(default_factory=dict)

    def explain(self) -> Explanation:
        """Per-unit scores and decisions (for heatmaps, debugging and the harness)."""
        plan, ctx = self.core, self.arrays
        span_of_unit = plan.span_of_unit
        return Explanation(
            unit_chunk=ctx.unit_chunk,
            unit_char_spans=self.context.unit_char_spans(),
            unit_span=span_of_unit,
            unit_entropy=plan.span_entropy[span_of_unit],
            unit_density=span_entropy(ctx.word_vectors, ctx.unit_starts),
            unit_score=plan.unit_scores,
            unit_kept=plan.kept | (plan.partial > 0),
            unit_coarse=plan.coarse[span_of_unit],
            budget_choice=plan.budget_choice,
        )


def render_plan(plan: Plan, separator: str) -> CompressionResult:
    """The :class:`CompressionResult` of ``plan``, ``separator`` between kept pieces of a chunk.

    One place decides what a result says: kept tokens include separators; offsets index the text
    as given."""
    t0 = time.perf_counter()
    core = plan.core
    span_of_unit = core.span_of_unit
    results = []
    unit_lo = 0
    shares = plan.budgets.tolist() if len(plan.budgets) > 1 else None  # per_chunk scope
    for i, c in enumerate(plan.context.chunks):
        sl = slice(unit_lo, unit_lo + c.n_units)
        kept = core.kept[sl]
        partial = core.partial[sl]
        pu = int(np.flatnonzero(partial)[0]) if partial.any() else -1
        ranges = kept_word_ranges(
            kept, c.unit_starts, c.n_words, pu, int(partial[pu]) if pu >= 0 else 0
        )
        text, offsets = render(c.text, c.word_spans, ranges, separator)
        kept_tokens = sum(int(c.word_costs[a:b].sum()) for a, b in ranges.tolist())
        ent = core.span_entropy[span_of_unit[sl]] if c.n_units else np.zeros(0)
        results.append(
            ChunkResult(
                text=text,
                offsets=offsets,
                original_tokens=int(c.word_costs.sum()),
                kept_tokens=kept_tokens + plan.separator_cost * max(len(offsets) - 1, 0),
                forced_tokens=int(core.unit_costs[sl][c.forced].sum()) if c.n_units else 0,
                n_units=c.n_units,
                n_units_kept=int(kept.sum()),
                span_entropy=float(ent.mean()) if c.n_units else 0.0,
                budget_tokens=None if shares is None else int(shares[i]),
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
