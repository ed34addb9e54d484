"""The engine: encoder + fingerprint store + pure core, as three public stages.

:meth:`Compressor.prepare` (query-independent, cacheable: fingerprints, units, token costs,
force-keep flags), :meth:`Compressor.plan` (relevance, spans, entropy, redundancy, budgeted
selection: a :class:`~semtoken_rag.prepared.Plan`) and :meth:`Compressor.render` (verbatim text
with offsets).  :meth:`Compressor.compress` composes them, :meth:`Compressor.compress_many`
shares one ``prepare`` across requests, :meth:`Compressor.ingest` fills the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from semtoken_rag.budgets import call_budgets, plan_with_scores, separator_cost
from semtoken_rag.cache import MemoryFingerprintCache
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.core.pipeline import StageHook, plan_context
from semtoken_rag.dedup import dedup_backend
from semtoken_rag.errors import ConfigError, InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource
from semtoken_rag.fork_threads import ForkSafeLock
from semtoken_rag.ingestion import IngestOptions, IngestReport, SourceDocument
from semtoken_rag.inputs import (
    Request,
    check_budget,
    check_chunks,
    check_query,
    check_requests,
    check_sources,
    check_text,
    model_text,
)
from semtoken_rag.parts import check_engine_parts, check_plan_args, load_counter, load_encoder
from semtoken_rag.preparation import ChunkPreparer, fingerprints_of
from semtoken_rag.prepared import Plan, PreparedContext, render_plan
from semtoken_rag.protocols import Counter, FingerprintEncoder, FingerprintStoreProtocol
from semtoken_rag.queries import QueryVectors, is_summary_request
from semtoken_rag.results import CompressionResult, Explanation

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Compressor:
    """Query-conditioned semantic compression of retrieved chunks.

    Args:
        config: Engine configuration (defaults to ``SemTokenConfig()``).
        encoder: A :class:`~semtoken_rag.protocols.FingerprintEncoder`; built from the config on
            first use if omitted (once, thread-safe).
        store: A fingerprint store; default an in-memory LRU if ``config.cache_embeddings``.
        counter: Budget token counter (default: ``config.count_tokenizer`` or the encoder's).

    Example: ``Compressor(SemTokenConfig(compression_ratio=0.5)).compress(chunks, "Who?")``.
    """

    def __init__(
        self,
        config: SemTokenConfig | None = None,
        *,
        encoder: FingerprintEncoder | None = None,
        store: FingerprintStoreProtocol | None = None,
        counter: Counter | None = None,
    ) -> None:
        self.config = check_engine_parts(config or SemTokenConfig(), encoder, store, counter)
        self._encoder = encoder
        if store is None and self.config.cache_embeddings:
            store = MemoryFingerprintCache(self.config.encoder.cache_bytes)
        self.store = store
        self._counter = counter
        self._build_lock = ForkSafeLock(reentrant=True)  # the counter may build the encoder
        self._prepare_chunk = ChunkPreparer(self.config, lambda: self.counter)
        self._dedup = dedup_backend(self.config.selection.dedup_backend)
        self._queries = QueryVectors(self.config.selection.relevance)
        self._sep_cost: int | None = None

    # -- lazily built parts (once, under a lock: a server's first requests arrive together) --
    @property
    def encoder(self) -> FingerprintEncoder:
        """The fingerprint encoder (built from the config on first use)."""
        return self._built("_encoder", lambda: load_encoder(self.config))

    @property
    def counter(self) -> Counter:
        """The budget's token counter (built on first use; ``count_tokenizer`` needs no encoder)."""
        return self._built("_counter", lambda: load_counter(self.config, lambda: self.encoder))

    def _built(self, attr: str, factory: Callable[[], T]) -> T:
        if getattr(self, attr) is None:
            with self._build_lock:
                if getattr(self, attr) is None:
                    setattr(self, attr, factory())
        part: T = getattr(self, attr)
        return part

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the counting tokenizer.

        Raises:
            InvalidInputError: ``text`` is not one ``str`` (a list is refused, not counted).
        """
        return self.counter.count(model_text(check_text(text)))

    def fingerprints(
        self, texts: Sequence[str], sources: Sequence[ChunkSource | None] | None = None
    ) -> tuple[list[ChunkFingerprints], int]:
        """Fingerprints of ``texts`` from the store, encoding (and storing) only the misses.

        Returns:
            ``(fingerprints, n_encoded)``.

        Raises:
            InvalidInputError: ``texts`` not a sequence of strings, or sources of another length.
        """
        return fingerprints_of(texts, self.encoder, self.store, sources)

    def ingest(
        self,
        documents: str | SourceDocument | Iterable[str | SourceDocument],
        options: IngestOptions | None = None,
    ) -> IngestReport:
        """Fingerprint whole documents into the store; chunks cut from them need no encoder pass.

        Args:
            documents: Texts or :class:`~semtoken_rag.ingestion.SourceDocument` objects.
            options: Batching, failures and progress.

        Raises:
            ConfigError: the engine has no persistent store.
        """
        from semtoken_rag.ingestion import LocalRunner, ingest

        if not hasattr(self.store, "write"):
            raise ConfigError(
                "ingestion needs a fingerprint store: Compressor(store=FingerprintStore(DIR)) "
                "(the default in-memory cache keeps nothing after the process ends)"
            )
        return ingest(documents, self.store, LocalRunner(self.encoder), options)

    # -- the three stages -------------------------------------------------------------------
    def prepare(
        self,
        chunks: str | Sequence[str],
        *,
        fingerprints: bool = True,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> PreparedContext:
        """Stage 1: everything about the chunks that does not depend on a query.

        Args:
            chunks: One text or a sequence of chunk texts.
            fingerprints: ``False`` skips encoder and store (for ``plan(..., scores=...)``).
            sources: Where each chunk came from (store hints), one per chunk or None.

        Raises:
            InvalidInputError: chunks are not strings, or sources of another length.
        """
        texts = check_chunks(chunks)
        hints = check_sources(sources, len(texts))
        first: dict[str, int] = {}
        for i, t in enumerate(texts):
            first.setdefault(t, i)
        unique = list(first)
        t0 = time.perf_counter()
        fps: list[ChunkFingerprints | None] = [None] * len(unique)
        n_encoded = 0
        if fingerprints:
            found, n_encoded = self.fingerprints(
                unique, None if hints is None else [hints[first[t]] for t in unique]
            )
            fps = list(found)
        t1 = time.perf_counter()
        by_text = {t: self._prepare_chunk(t, fp) for t, fp in zip(unique, fps, strict=True)}
        t2 = time.perf_counter()
        fetch_ms = (t1 - t0) * 1e3
        return PreparedContext(
            tuple(by_text[t] for t in texts),
            encoder_calls=n_encoded,
            encode_ms=fetch_ms if n_encoded else 0.0,
            store_ms=0.0 if n_encoded else fetch_ms,
            count_ms=(t2 - t1) * 1e3,
        )

    def plan(
        self,
        prepared: PreparedContext,
        query: str | None = None,
        *,
        ratio: float | str | None = None,
        budget: int | None = None,
        scores: np.ndarray | Sequence[float] | None = None,
        on_stage: StageHook | None = None,
    ) -> Plan:
        """Stage 2: what to keep of a prepared context under a budget, and why.

        Args:
            prepared: From :meth:`prepare`.
            query: The question; ``None``, ``""`` or blank means query-free compression.
            ratio: Overrides ``config.compression_ratio`` (a number, or ``"auto"``).
            budget: Absolute token budget (overrides any ratio).
            scores: ``(U,)`` external unit scores (``prepared.unit_texts()`` order) to rank by
                instead of SemToken's; the budget, force-keep and rendering stay the engine's.
            on_stage: Called with each core stage's name and duration in seconds.

        Raises:
            InvalidInputError: not a prepared context, a bad budget, or scores of wrong length.
        """
        check_plan_args(prepared, on_stage)
        ratio, budget = check_budget(ratio, budget)
        query = check_query(query)
        t0 = time.perf_counter()
        dim = self.encoder.dim if prepared.has_fingerprints and len(prepared) else 0
        arrays = prepared.arrays(dim)
        originals = np.asarray([int(c.word_costs.sum()) for c in prepared.chunks], np.int64)
        budgets = call_budgets(originals, ratio, budget, self.config.budget)
        sep_cost = self._separator_cost()
        stage_ms: dict[str, float] = {"assemble": (time.perf_counter() - t0) * 1e3}

        def record(name: str, seconds: float) -> None:
            stage_ms[name] = seconds * 1e3
            if on_stage is not None:
                on_stage(name, seconds)

        if scores is not None:
            core = plan_with_scores(arrays, scores, budgets, self.config.selection, sep_cost)
        elif not prepared.has_fingerprints:
            raise InvalidInputError(
                "this context was prepared without fingerprints: pass scores= or "
                "prepare(chunks) with fingerprints"
            )
        else:
            qvec = None if query is None else self._queries.get(self.encoder, [query])[query]
            core = plan_context(
                arrays, qvec, budgets, self.config.selection, separator_cost=sep_cost,
                dedup_search=self._dedup, on_stage=record, generic_query=is_summary_request(query),
            )  # fmt: skip
        if not isinstance(budgets, np.ndarray):  # auto: the budgets the rule chose (per chunk)
            assert core.budgets is not None  # the core always reports them under the rule
            budgets = core.budgets
        return Plan(prepared, query, budgets, arrays, core, sep_cost, stage_ms)

    def render(self, plan: Plan) -> CompressionResult:
        """Stage 3: the plan as verbatim text pieces with offsets, per chunk.

        Raises:
            InvalidInputError: ``plan`` is not a :class:`~semtoken_rag.prepared.Plan`.
        """
        if not isinstance(plan, Plan):
            raise InvalidInputError(f"render() takes the Plan of plan(), got {type(plan).__name__}")
        return render_plan(plan, self.config.budget.separator)

    def compress(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | str | None = None,
        budget: int | None = None,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> CompressionResult:
        """Compress the chunks retrieved for one query: ``render(plan(prepare(chunks)))``.

        Arguments as in :meth:`prepare` and :meth:`plan`; one result per chunk, in order.

        Raises:
            InvalidInputError: chunks are not strings, or the budget is out of range.
        """
        return self.compress_many([(chunks, query, sources)], ratio=ratio, budget=budget)[0]

    async def acompress(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | str | None = None,
        budget: int | None = None,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> CompressionResult:
        """:meth:`compress` in a worker thread, so an event loop is never blocked."""
        return await asyncio.to_thread(
            self.compress, chunks, query, ratio=ratio, budget=budget, sources=sources
        )

    def compress_many(
        self,
        requests: Sequence[Request],
        *,
        ratio: float | str | None = None,
        budget: int | None = None,
        explain: list[Explanation] | None = None,
    ) -> list[CompressionResult]:
        """Compress several contexts, encoding shared chunks and all queries once, batched.

        Args:
            requests: ``(chunks, query)`` pairs, or ``(chunks, query, sources)`` triples.
            ratio: Overrides ``config.compression_ratio``.
            budget: Absolute token budget per request.
            explain: If a list is given, one :class:`Explanation` per request is appended.

        Raises:
            InvalidInputError: malformed requests, a bad budget, or ``explain`` not a list.
        """
        if explain is not None and not isinstance(explain, list):
            raise InvalidInputError(
                f"explain must be a list to append to, got {type(explain).__name__}"
            )
        check_budget(ratio, budget)
        reqs = check_requests(requests)
        texts = [t for chunks, _, _ in reqs for t in chunks]
        hints = [s for chunks, _, src in reqs for s in (src or [None] * len(chunks))]
        shared = self.prepare(texts, sources=hints)  # each text prepared once, first hint wins
        t0 = time.perf_counter()
        queries = sorted({q for _, q, _ in reqs if q is not None})
        if queries:
            self._queries.get(self.encoder, queries)  # one batched pass for new questions
        query_ms = (time.perf_counter() - t0) * 1e3
        n = max(1, len(reqs))
        out = []
        for i, (chunks, query, _) in enumerate(reqs):
            plan = self.plan(shared.subset(chunks), query, ratio=ratio, budget=budget)
            result = self.render(plan)
            if explain is not None:
                explain.append(plan.explain())
            out.append(
                result.with_shared_costs(
                    encoder_calls=shared.encoder_calls if i == 0 else 0,
                    encode_ms=(shared.encode_ms + query_ms) / n,
                    store_ms=shared.store_ms / n,
                    count_ms=shared.count_ms / n,
                )
            )
        return out

    def explain(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | str | None = None,
        budget: int | None = None,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> tuple[CompressionResult, Explanation]:
        """Like :meth:`compress`, also returning the per-unit scores behind the decision."""
        why: list[Explanation] = []
        requests = [(chunks, query, sources)]
        result = self.compress_many(requests, ratio=ratio, budget=budget, explain=why)
        return result[0], why[0]

    def _separator_cost(self) -> int:
        sep = self.config.budget.separator
        return self._built("_sep_cost", lambda: separator_cost(self.counter, sep))


__all__ = ["Compressor"]
