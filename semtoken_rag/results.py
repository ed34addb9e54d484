"""Typed results of a compression: per chunk and in total."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from semtoken_rag.core.adaptive import BudgetChoice


@dataclass(frozen=True)
class StageTimings:
    """Wall time of each stage of one compression call, in milliseconds."""

    segment_ms: float = 0.0
    encode_ms: float = 0.0
    store_ms: float = 0.0
    count_ms: float = 0.0
    core_ms: float = 0.0
    render_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return sum(dataclasses.astuple(self))


@dataclass(frozen=True)
class ChunkResult:
    """What was kept of one chunk.

    Attributes:
        text: The compressed chunk: kept pieces joined by the configured separator.
        offsets: ``[start, end)`` of every kept piece in the *original* chunk, in order (verbatim).
        original_tokens: Tokens of the original chunk as the budget charges them
            (:func:`~semtoken_rag.budgets.piece_edge_costs`).
        kept_tokens: Tokens the reader reads: kept pieces plus separators (the budget's charge).
        forced_tokens: Tokens kept because a force-keep rule matched.
        n_units: Units (sentences) in the chunk.
        n_units_kept: Units kept in full.
        span_entropy: Mean semantic entropy of the chunk's spans (for heatmaps and reports).
        budget_tokens: The chunk's share with ``budget_scope="per_chunk"`` (``None``: joint).
    """

    text: str
    offsets: tuple[tuple[int, int], ...]
    original_tokens: int
    kept_tokens: int
    forced_tokens: int = 0
    n_units: int = 0
    n_units_kept: int = 0
    span_entropy: float = 0.0
    budget_tokens: int | None = None

    @property
    def ratio(self) -> float:
        """Kept / original tokens (1.0 for an empty chunk)."""
        return self.kept_tokens / self.original_tokens if self.original_tokens else 1.0


@dataclass(frozen=True)
class CompressionResult:
    """Result of compressing a list of chunks for one query.

    Attributes:
        chunks: One :class:`ChunkResult` per input chunk, in input order.
        budget_tokens: The token budget that was applied (before force-keep overshoot).
        query: The query the selection was conditioned on (``None`` if none).
        dedup_saved_tokens: Tokens not kept because they near-duplicated a kept unit.
        encoder_calls: Chunks that needed an encoder pass (0 when every chunk hit the store).
        timings: Per-stage wall time.
        budget_choice: How ``compression_ratio="auto"`` chose ``budget_tokens`` (``None``: fixed).
    """

    chunks: tuple[ChunkResult, ...]
    budget_tokens: int
    query: str | None = None
    dedup_saved_tokens: int = 0
    encoder_calls: int = 0
    timings: StageTimings = field(default_factory=StageTimings)
    budget_choice: BudgetChoice | None = None

    @property
    def original_tokens(self) -> int:
        return sum(c.original_tokens for c in self.chunks)

    @property
    def kept_tokens(self) -> int:
        return sum(c.kept_tokens for c in self.chunks)

    @property
    def forced_tokens(self) -> int:
        return sum(c.forced_tokens for c in self.chunks)

    @property
    def ratio(self) -> float:
        """Achieved kept / original tokens over all chunks."""
        total = self.original_tokens
        return self.kept_tokens / total if total else 1.0

    @property
    def overshoot_tokens(self) -> int:
        """Tokens kept beyond the budget by force-keep rules (per chunk, beyond its own share)."""
        if self.chunks and all(c.budget_tokens is not None for c in self.chunks):
            return sum(max(0, c.kept_tokens - (c.budget_tokens or 0)) for c in self.chunks)
        return max(0, self.kept_tokens - self.budget_tokens)

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.chunks]

    def joined(self, sep: str = "\n\n") -> str:
        """All non-empty compressed chunks as one context string."""
        return sep.join(t for t in self.texts if t)

    def with_shared_costs(
        self, *, encoder_calls: int, encode_ms: float, store_ms: float, count_ms: float
    ) -> CompressionResult:
        """A copy carrying its share of a batched ``prepare`` (encoder calls and timings)."""
        timings = dataclasses.replace(
            self.timings, encode_ms=encode_ms, store_ms=store_ms, count_ms=count_ms
        )
        return dataclasses.replace(self, encoder_calls=encoder_calls, timings=timings)


@dataclass(frozen=True)
class Explanation:
    """Per-unit view of one compression, for heatmaps, debugging and the harness.

    Attributes:
        unit_chunk: ``(U,) int64`` chunk of each unit.
        unit_char_spans: ``(U, 2) int64`` character span of each unit in its chunk.
        unit_span: ``(U,) int64`` span (merged group) of each unit.
        unit_entropy: ``(U,) float32`` semantic entropy of the unit's span.
        unit_density: ``(U,) float32`` semantic entropy of the unit alone (its own words).
        unit_score: ``(U,) float32`` combined score.
        unit_kept: ``(U,) bool`` kept in full or in part.
        unit_coarse: ``(U,) bool`` the unit's span was collapsed (coarse granularity).
        budget_choice: How ``compression_ratio="auto"`` chose the budget (``None``: fixed).
    """

    unit_chunk: np.ndarray
    unit_char_spans: np.ndarray
    unit_span: np.ndarray
    unit_entropy: np.ndarray
    unit_density: np.ndarray
    unit_score: np.ndarray
    unit_kept: np.ndarray
    unit_coarse: np.ndarray
    budget_choice: BudgetChoice | None = None
