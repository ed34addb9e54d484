"""The engine: encoder + fingerprint store + pure core, for one query or many.

``Compressor.compress(chunks, query)`` segments every chunk, looks its fingerprints up in the
store (encoding only the misses, in one batched pass), counts tokens in the counting tokenizer,
runs the core over all chunks jointly and renders each chunk back to text with offsets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from semtoken_rag.cache import LRUMemo
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.core.forcekeep import compile_rules, forced_units, match_spans
from semtoken_rag.core.pipeline import ContextArrays, CoreParams, CorePlan, plan_context
from semtoken_rag.core.render import kept_word_ranges, render
from semtoken_rag.core.segment import find_units, word_ids
from semtoken_rag.dedup import dedup_backend
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.explain import explain_plan
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.inputs import check_budget, check_chunks, check_query
from semtoken_rag.protocols import Counter, FingerprintEncoder, FingerprintStoreProtocol
from semtoken_rag.queries import QueryVectors
from semtoken_rag.results import ChunkResult, CompressionResult, Explanation, StageTimings

logger = logging.getLogger(__name__)


#: Chunk texts whose segmentation, token costs, force-keep flags and word ids are memoised.
_PREPARE_CACHE_SIZE = 2048


@dataclass(frozen=True)
class _Prepared:
    """One chunk, segmented, fingerprinted and costed."""

    text: str
    fp: ChunkFingerprints
    unit_starts: np.ndarray
    word_costs: np.ndarray
    forced: np.ndarray
    word_ids: np.ndarray | None


class Compressor:
    """Query-conditioned semantic compression of retrieved chunks.

    Args:
        config: Engine configuration (defaults to ``SemTokenConfig()``).
        encoder: A :class:`FingerprintEncoder`; built from the config on first use if omitted.
        store: A fingerprint store; an in-memory LRU when ``config.cache_embeddings`` (default)
            and none is given.
        counter: Token counter for budgets; built from ``config.count_tokenizer`` or the
            encoder's tokenizer if omitted.

    Example:
        >>> comp = Compressor(SemTokenConfig(compression_ratio=0.5))  # doctest: +SKIP
        >>> res = comp.compress(chunks, query="Who wrote it?")  # doctest: +SKIP
        >>> res.ratio, res.chunks[0].offsets  # doctest: +SKIP
    """

    def __init__(
        self,
        config: SemTokenConfig | None = None,
        *,
        encoder: FingerprintEncoder | None = None,
        store: FingerprintStoreProtocol | None = None,
        counter: Counter | None = None,
    ) -> None:
        self.config = config or SemTokenConfig()
        self._encoder = encoder
        if store is None and self.config.cache_embeddings:
            from semtoken_rag.cache import MemoryFingerprintCache

            store = MemoryFingerprintCache()
        self.store = store
        self._counter = counter
        self._rule = compile_rules(self.config.force_keep, self.config.force_keep_presets)
        c = self.config
        self._params = CoreParams(
            similarity_threshold=c.similarity_threshold,
            entropy_threshold=c.entropy_threshold,
            relevance=c.relevance,
            query_top_words=c.query_top_words,
            min_cluster_size=c.min_cluster_size,
            max_cluster_size=c.max_cluster_size,
            relevance_weight=c.relevance_weight,
            entropy_weight=c.entropy_weight,
            dedup_threshold=c.dedup_threshold,
            no_query_mode=c.no_query_mode,
            fill_partial=c.fill_partial,
            min_fill_tokens=c.min_fill_tokens,
            dedup_backend=dedup_backend(c.dedup_backend),
            lexical_dedup_threshold=c.lexical_dedup_threshold,
        )
        self._queries = QueryVectors(c.relevance)
        self._prep_cache: LRUMemo[str, tuple[Any, ...]] = LRUMemo(_PREPARE_CACHE_SIZE)
        self._sep_cost: int | None = None

    # -- lazily built parts ---------------------------------------------------------------
    @property
    def encoder(self) -> FingerprintEncoder:
        if self._encoder is None:
            from semtoken_rag.encoder import TransformerEncoder

            self._encoder = TransformerEncoder.from_config(self.config)
        return self._encoder

    @property
    def counter(self) -> Counter:
        if self._counter is None:
            from semtoken_rag.tokens import TokenCounter, load_counter

            if self.config.count_tokenizer is not None:
                self._counter = load_counter(self.config.count_tokenizer)
            else:
                tok = getattr(self.encoder, "tokenizer", None)
                if tok is None:
                    raise InvalidInputError(
                        "the encoder has no tokenizer: pass counter= or config.count_tokenizer"
                    )
                self._counter = TokenCounter(tok, name=getattr(self.encoder, "model_id", None))
        return self._counter

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the counting tokenizer."""
        return self.counter.count(text)

    # -- fingerprints ---------------------------------------------------------------------
    def fingerprints(self, texts: Sequence[str]) -> tuple[list[ChunkFingerprints], int]:
        """Fingerprints of ``texts`` from the store, encoding (and storing) only the misses.

        Returns:
            ``(fingerprints, n_encoded)``.
        """
        enc = self.encoder
        keys = [fingerprint_key(t, enc.cache_id) for t in texts]
        found: list[ChunkFingerprints | None] = (
            self.store.get_many(keys) if self.store is not None else [None] * len(texts)
        )
        missing: dict[str, int] = {}
        for i, fp in enumerate(found):
            if fp is None and keys[i] not in missing:
                missing[keys[i]] = i
        if missing:
            idx = list(missing.values())
            new = enc.encode_texts([texts[i] for i in idx])
            by_key = dict(zip(missing.keys(), new))
            found = [fp if fp is not None else by_key[k] for fp, k in zip(found, keys)]
            if self.store is not None:
                self.store.put_many(list(by_key.items()))
        return [fp for fp in found if fp is not None], len(missing)

    def _query_vectors(self, queries: Sequence[str]) -> dict[str, np.ndarray]:
        """Query embeddings for the configured relevance, memoised (a warm compression of a
        known question costs no encoder pass)."""
        return self._queries.get(self.encoder, queries)

    def precompute(self, texts: Sequence[str]) -> int:
        """Fingerprint ``texts`` into the store ahead of queries (ingestion).

        Returns:
            Number of texts that had to be encoded (the rest were already stored).
        """
        return self.fingerprints(check_chunks(texts))[1]

    # -- compression ----------------------------------------------------------------------
    def compress(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | None = None,
        budget: int | None = None,
    ) -> CompressionResult:
        """Compress the chunks retrieved for one query.

        Args:
            chunks: One text or a sequence of chunk texts (kept in order, one result each).
            query: The question the context must answer; ``None``, ``""`` or blank means
                query-free compression (``config.no_query_mode``).
            ratio: Overrides ``config.compression_ratio`` for this call.
            budget: Absolute token budget for this call (overrides any ratio).

        Returns:
            A :class:`CompressionResult`.

        Raises:
            InvalidInputError: chunks are not strings, or the budget is out of range.
        """
        return self.compress_many([(chunks, query)], ratio=ratio, budget=budget)[0]

    async def acompress(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | None = None,
        budget: int | None = None,
    ) -> CompressionResult:
        """:meth:`compress` in a worker thread, so an event loop is never blocked."""
        return await asyncio.to_thread(self.compress, chunks, query, ratio=ratio, budget=budget)

    def compress_many(
        self,
        requests: Sequence[tuple[str | Sequence[str], str | None]],
        *,
        ratio: float | None = None,
        budget: int | None = None,
        explain: list[Explanation] | None = None,
    ) -> list[CompressionResult]:
        """Compress several ``(chunks, query)`` contexts; chunks shared between them and all
        queries are encoded once, in batched passes.

        Args:
            requests: ``(chunks, query)`` pairs.
            ratio: Overrides ``config.compression_ratio``.
            budget: Absolute token budget per request.
            explain: If a list is given, one :class:`Explanation` per request is appended.
        """
        check_budget(ratio, budget)
        reqs = [(check_chunks(c), check_query(q)) for c, q in requests]
        t0 = time.perf_counter()
        unique: dict[str, None] = {}
        for chunks, _ in reqs:
            unique.update(dict.fromkeys(chunks))
        texts = list(unique)
        fps, n_encoded = self.fingerprints(texts)
        t1 = time.perf_counter()
        queries = sorted({q for _, q in reqs if q is not None})
        qvecs = self._query_vectors(queries)
        t2 = time.perf_counter()
        prepared = {t: self._prepare_memo(t, fp) for t, fp in zip(texts, fps)}
        t3 = time.perf_counter()
        out = []
        for chunks, query in reqs:
            result, plan, ctx = self._compress_prepared(
                [prepared[c] for c in chunks],
                None if query is None else qvecs[query],
                query,
                ratio,
                budget,
            )
            out.append(result)
            if explain is not None:
                explain.append(
                    explain_plan(
                        plan, ctx, [(prepared[c].unit_starts, prepared[c].fp) for c in chunks]
                    )
                )
        shared = StageTimings(
            encode_ms=(t2 - t1) * 1e3 + ((t1 - t0) * 1e3 if n_encoded else 0.0),
            store_ms=0.0 if n_encoded else (t1 - t0) * 1e3,
            count_ms=(t3 - t2) * 1e3,
        )
        n = max(1, len(out))
        return [
            CompressionResult(
                chunks=r.chunks,
                budget_tokens=r.budget_tokens,
                query=r.query,
                dedup_saved_tokens=r.dedup_saved_tokens,
                encoder_calls=n_encoded if i == 0 else 0,
                timings=StageTimings(
                    segment_ms=r.timings.segment_ms,
                    encode_ms=shared.encode_ms / n,
                    store_ms=shared.store_ms / n,
                    count_ms=shared.count_ms / n,
                    core_ms=r.timings.core_ms,
                    render_ms=r.timings.render_ms,
                ),
            )
            for i, r in enumerate(out)
        ]

    def explain(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | None = None,
        budget: int | None = None,
    ) -> tuple[CompressionResult, Explanation]:
        """Compress and also return the per-unit scores behind the decision."""
        explanations: list[Explanation] = []
        result = self.compress_many(
            [(chunks, query)], ratio=ratio, budget=budget, explain=explanations
        )[0]
        return result, explanations[0]

    # -- internals ------------------------------------------------------------------------
    def _prepare_memo(self, text: str, fp: ChunkFingerprints) -> _Prepared:
        """:meth:`_prepare`, memoised per chunk text (the fingerprints are not kept).

        Why: a warm compression (fingerprints from the store) otherwise re-segments and
        re-hashes every word of every chunk on each call, about a third of its time; the
        result depends only on the text (word spans come from the text) and this
        compressor's fixed config and counter.  The cached arrays are never written.
        """
        hit = self._prep_cache.get(text)
        if hit is not None and len(hit[1]) == fp.n_words:
            return _Prepared(text, fp, *hit)
        p = self._prepare(text, fp)
        parts = (p.unit_starts, p.word_costs, p.forced, p.word_ids)
        for a in (p.unit_starts, p.forced, p.word_ids):  # word_costs: the counter's own memo
            if a is not None:
                a.flags.writeable = False
        self._prep_cache.put(text, parts)
        return p

    def _separator_cost(self) -> int:
        if self._sep_cost is None:
            sep = self.config.separator
            self._sep_cost = self.counter.count(sep) if sep else 0
        return self._sep_cost

    def _prepare(self, text: str, fp: ChunkFingerprints) -> _Prepared:
        units = find_units(text, fp.word_spans, self.config.max_unit_words, self.config.unit)
        costs = self.counter.word_costs(text, fp.word_spans)
        forced = forced_units(match_spans(text, self._rule), fp.word_spans, units)
        ids = (
            word_ids(text, fp.word_spans)
            if self.config.lexical_dedup_threshold is not None
            else None
        )
        return _Prepared(text, fp, units, costs, forced, ids)

    def _budgets(
        self, originals: np.ndarray, ratio: float | None, budget: int | None
    ) -> np.ndarray:
        total = int(originals.sum())
        if budget is None and ratio is None:
            budget = self.config.budget_tokens
            ratio = self.config.compression_ratio
        if self.config.budget_scope == "joint":
            b = budget if budget is not None else int(float(ratio or 1.0) * total)
            return np.asarray([min(b, total)], dtype=np.int64)
        if budget is not None:
            share = originals / max(total, 1)
            return np.floor(share * budget).astype(np.int64)
        return np.floor(float(ratio or 1.0) * originals).astype(np.int64)

    def _compress_prepared(
        self,
        items: list[_Prepared],
        qvec: np.ndarray | None,
        query: str | None,
        ratio: float | None,
        budget: int | None,
    ) -> tuple[CompressionResult, CorePlan, ContextArrays]:
        t0 = time.perf_counter()
        dim = self.encoder.dim
        originals = np.asarray([int(p.word_costs.sum()) for p in items], dtype=np.int64)
        budgets = self._budgets(originals, ratio, budget)
        word_offsets = np.cumsum([0] + [p.fp.n_words for p in items])
        ctx = ContextArrays(
            word_vectors=(
                np.concatenate([p.fp.vectors for p in items])
                if items
                else np.zeros((0, dim), np.float32)
            ),
            word_costs=(
                np.concatenate([p.word_costs for p in items]) if items else np.zeros(0, np.int64)
            ),
            unit_starts=(
                np.concatenate([p.unit_starts + o for p, o in zip(items, word_offsets)])
                if items
                else np.zeros(0, np.int64)
            ).astype(np.int64),
            unit_chunk=np.repeat(np.arange(len(items)), [len(p.unit_starts) for p in items]).astype(
                np.int64
            ),
            forced=(
                np.concatenate([p.forced for p in items]) if items else np.zeros(0, bool)
            ).astype(bool),
            word_ids=(
                np.concatenate([p.word_ids for p in items]).astype(np.uint64)
                if items and all(p.word_ids is not None for p in items)
                else None
            ),
        )
        t1 = time.perf_counter()
        sep_cost = self._separator_cost()
        # Separators are tokens the reader reads too: the selection charges them to the budget.
        params = (
            dataclasses.replace(self._params, separator_cost=sep_cost) if sep_cost else self._params
        )
        plan = plan_context(ctx, qvec, budgets, params)
        t2 = time.perf_counter()
        results = self._render(items, ctx, plan, word_offsets, sep_cost)
        t3 = time.perf_counter()
        result = CompressionResult(
            chunks=tuple(results),
            budget_tokens=int(budgets.sum()),
            query=query,
            dedup_saved_tokens=plan.dedup_skipped_tokens,
            timings=StageTimings(
                segment_ms=(t1 - t0) * 1e3, core_ms=(t2 - t1) * 1e3, render_ms=(t3 - t2) * 1e3
            ),
        )
        return result, plan, ctx

    def _render(
        self,
        items: list[_Prepared],
        ctx: ContextArrays,
        plan: CorePlan,
        word_offsets: np.ndarray,
        sep_cost: int,
    ) -> list[ChunkResult]:
        results = []
        unit_lo = 0
        span_of_unit = np.repeat(
            np.arange(len(plan.span_starts)),
            np.diff(np.append(plan.span_starts, ctx.n_units)),
        )
        for p in items:
            n_u = len(p.unit_starts)
            sl = slice(unit_lo, unit_lo + n_u)
            kept = plan.kept[sl]
            partial = plan.partial[sl]
            pu = int(np.flatnonzero(partial)[0]) if partial.any() else -1
            ranges = kept_word_ranges(
                kept, p.unit_starts, p.fp.n_words, pu, int(partial[pu]) if pu >= 0 else 0
            )
            text, offsets = render(p.text, p.fp.word_spans, ranges, self.config.separator)
            word_kept = np.zeros(p.fp.n_words, dtype=bool)
            for a, b in ranges.tolist():
                word_kept[a:b] = True
            kept_tokens = int(p.word_costs[word_kept].sum()) + sep_cost * max(len(offsets) - 1, 0)
            forced_tokens = int(plan.unit_costs[sl][p.forced].sum())
            ent = plan.span_entropy[span_of_unit[sl]] if n_u else np.zeros(0)
            results.append(
                ChunkResult(
                    text=text,
                    offsets=offsets,
                    original_tokens=int(p.word_costs.sum()),
                    kept_tokens=kept_tokens,
                    forced_tokens=forced_tokens,
                    n_units=n_u,
                    n_units_kept=int(kept.sum()),
                    span_entropy=float(ent.mean()) if n_u else 0.0,
                )
            )
            unit_lo += n_u
        return results
