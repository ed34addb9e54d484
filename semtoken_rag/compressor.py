"""The engine: encoder + fingerprint store + pure core, as three public stages.

* :meth:`Compressor.prepare` (query-independent, cacheable): fingerprints from the store, the
  misses encoded in one batched pass; units, token costs, force-keep flags.
* :meth:`Compressor.plan`: query relevance, spans, entropy, redundancy and the budgeted
  selection; returns what would be kept and why (a :class:`~semtoken_rag.prepared.Plan`).
* :meth:`Compressor.render`: the plan back to verbatim text with offsets.

:meth:`Compressor.compress` is their composition; :meth:`Compressor.compress_many` shares one
``prepare`` (one encoder pass) across many requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from semtoken_rag import models
from semtoken_rag.cache import LRUMemo
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.core.forcekeep import compile_rules, forced_units, match_spans
from semtoken_rag.core.pipeline import StageHook, plan_context, plan_scored
from semtoken_rag.core.segment import find_units, find_words, word_ids
from semtoken_rag.dedup import dedup_backend
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.inputs import check_budget, check_chunks, check_query, model_text
from semtoken_rag.prepared import Plan, PreparedChunk, PreparedContext
from semtoken_rag.protocols import Counter, FingerprintEncoder, FingerprintStoreProtocol
from semtoken_rag.queries import QueryVectors, is_summary_request
from semtoken_rag.rendering import render_plan
from semtoken_rag.results import CompressionResult, Explanation

logger = logging.getLogger(__name__)

#: Chunk texts whose segmentation, token costs, force-keep flags and word ids are memoised.
_PREPARE_CACHE_SIZE = 2048


class Compressor:
    """Query-conditioned semantic compression of retrieved chunks.

    Args:
        config: Engine configuration (defaults to ``SemTokenConfig()``).
        encoder: A :class:`~semtoken_rag.protocols.FingerprintEncoder`; built from the config on
            first use if omitted (thread-safe: concurrent first calls load it once).
        store: A fingerprint store; an in-memory LRU when ``config.cache_embeddings`` (default)
            and none is given.
        counter: Token counter for budgets; built from ``config.count_tokenizer`` or the
            encoder's tokenizer if omitted.

    Example:
        >>> comp = Compressor(SemTokenConfig(compression_ratio=0.5))  # doctest: +SKIP
        >>> res = comp.compress(chunks, query="Who wrote it?")  # doctest: +SKIP
        >>> prepared = comp.prepare(chunks)  # doctest: +SKIP
        >>> plan = comp.plan(prepared, "Who wrote it?", ratio=0.25)  # doctest: +SKIP
        >>> comp.render(plan).joined(), plan.explain().unit_score  # doctest: +SKIP
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
        if not isinstance(self.config, SemTokenConfig):
            raise InvalidInputError(
                f"config must be a SemTokenConfig, got {type(self.config).__name__}"
            )
        self._encoder = encoder
        if store is None and self.config.cache_embeddings:
            from semtoken_rag.cache import MemoryFingerprintCache

            store = MemoryFingerprintCache()
        self.store = store
        self._counter = counter
        self._build_lock = threading.RLock()  # the counter may build the encoder
        budget = self.config.budget
        self._rules = compile_rules(budget.force_keep, budget.force_keep_presets)
        self._dedup = dedup_backend(self.config.selection.dedup_backend)
        self._queries = QueryVectors(self.config.selection.relevance)
        self._prep_cache: LRUMemo[str, PreparedChunk] = LRUMemo(_PREPARE_CACHE_SIZE)
        self._sep_cost: int | None = None

    # -- lazily built parts (once, under a lock: a server's first requests arrive together) --
    @property
    def encoder(self) -> FingerprintEncoder:
        """The fingerprint encoder (built from the config on first use)."""
        if self._encoder is None:
            self._build(lambda: setattr(self, "_encoder", _load_encoder(self.config)), "_encoder")
        assert self._encoder is not None
        return self._encoder

    @property
    def counter(self) -> Counter:
        """The token counter the budget is counted in (built on first use)."""
        if self._counter is None:
            self._build(lambda: setattr(self, "_counter", self._load_counter()), "_counter")
        assert self._counter is not None
        return self._counter

    def _build(self, build: Callable[[], None], attr: str) -> None:
        with self._build_lock:
            if getattr(self, attr) is None:
                build()

    def _load_counter(self) -> Counter:
        from semtoken_rag.tokens import TokenCounter, load_counter

        if self.config.count_tokenizer is not None:
            with models.LOAD_LOCK:
                return load_counter(self.config.count_tokenizer)
        tok = getattr(self.encoder, "tokenizer", None)
        if tok is None:
            raise InvalidInputError(
                "the encoder has no tokenizer: pass counter= or config.count_tokenizer"
            )
        return TokenCounter(tok, name=getattr(self.encoder, "model_id", None))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the counting tokenizer."""
        return self.counter.count(model_text(check_chunks(text)[0]))

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
            new = enc.encode_texts([model_text(texts[i]) for i in idx])
            by_key = dict(zip(missing.keys(), new, strict=True))
            found = [fp if fp is not None else by_key[k] for fp, k in zip(found, keys, strict=True)]
            if self.store is not None:
                self.store.put_many(list(by_key.items()))
        return [fp for fp in found if fp is not None], len(missing)

    def precompute(self, texts: Sequence[str]) -> int:
        """Fingerprint ``texts`` into the store ahead of queries (ingestion).

        Returns:
            Number of texts that had to be encoded (the rest were already stored).
        """
        return self.fingerprints(check_chunks(texts))[1]

    # -- the three stages -------------------------------------------------------------------
    def prepare(self, chunks: str | Sequence[str], *, fingerprints: bool = True) -> PreparedContext:
        """Stage 1: everything about the chunks that does not depend on a query.

        Args:
            chunks: One text or a sequence of chunk texts.
            fingerprints: ``False`` skips the encoder and the store (units and costs only), for
                ranking the units with external scores (``plan(..., scores=...)``).

        Raises:
            InvalidInputError: chunks are not strings.
        """
        texts = check_chunks(chunks)
        unique = list(dict.fromkeys(texts))
        t0 = time.perf_counter()
        fps: list[ChunkFingerprints | None] = [None] * len(unique)
        n_encoded = 0
        if fingerprints:
            found, n_encoded = self.fingerprints(unique)
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
        ratio: float | None = None,
        budget: int | None = None,
        scores: np.ndarray | Sequence[float] | None = None,
        on_stage: StageHook | None = None,
    ) -> Plan:
        """Stage 2: what to keep of a prepared context under a budget, and why.

        Args:
            prepared: From :meth:`prepare`.
            query: The question; ``None``, ``""`` or blank means query-free compression.
            ratio: Overrides ``config.compression_ratio``.
            budget: Absolute token budget (overrides any ratio).
            scores: ``(U,)`` external unit scores (``prepared.unit_texts()`` order) to rank by
                instead of SemToken's; the budget, force-keep and rendering stay the engine's.
            on_stage: Called with each core stage's name and duration in seconds.

        Raises:
            InvalidInputError: a bad budget, or scores of the wrong length.
        """
        ratio, budget = check_budget(ratio, budget)
        query = check_query(query)
        t0 = time.perf_counter()
        dim = self.encoder.dim if prepared.has_fingerprints and len(prepared) else 0
        arrays = prepared.arrays(dim)
        originals = np.asarray([int(c.word_costs.sum()) for c in prepared.chunks], np.int64)
        budgets = self._budgets(originals, ratio, budget)
        sep_cost = self._separator_cost()
        stage_ms: dict[str, float] = {"assemble": (time.perf_counter() - t0) * 1e3}

        def record(name: str, seconds: float) -> None:
            stage_ms[name] = seconds * 1e3
            if on_stage is not None:
                on_stage(name, seconds)

        if scores is not None:
            ext = np.asarray(scores, dtype=np.float64).reshape(-1)
            if len(ext) != arrays.n_units or not np.isfinite(ext).all():
                raise InvalidInputError(
                    f"scores must be {arrays.n_units} finite numbers (one per unit), got {len(ext)}"
                )
            core = plan_scored(arrays, ext, budgets, self.config.selection, separator_cost=sep_cost)
        else:
            if not prepared.has_fingerprints:
                raise InvalidInputError(
                    "this context was prepared without fingerprints: pass scores= or "
                    "prepare(chunks) with fingerprints"
                )
            qvec = None if query is None else self._queries.get(self.encoder, [query])[query]
            core = plan_context(
                arrays,
                qvec,
                budgets,
                self.config.selection,
                separator_cost=sep_cost,
                dedup_search=self._dedup,
                on_stage=record,
                generic_query=is_summary_request(query),
            )
        return Plan(prepared, query, budgets, arrays, core, sep_cost, stage_ms)

    def render(self, plan: Plan) -> CompressionResult:
        """Stage 3: the plan as verbatim text pieces with offsets, per chunk."""
        return render_plan(plan, self.config.separator)

    # -- compositions -----------------------------------------------------------------------
    def compress(
        self,
        chunks: str | Sequence[str],
        query: str | None = None,
        *,
        ratio: float | None = None,
        budget: int | None = None,
    ) -> CompressionResult:
        """Compress the chunks retrieved for one query: ``render(plan(prepare(chunks)))``.

        Args:
            chunks: One text or a sequence of chunk texts (kept in order, one result each).
            query: The question the context must answer; ``None``, ``""`` or blank means
                query-free compression (``config.no_query_mode``).
            ratio: Overrides ``config.compression_ratio`` for this call.
            budget: Absolute token budget for this call (overrides any ratio).

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
        if isinstance(requests, (str, bytes)) or not isinstance(requests, Sequence):
            raise InvalidInputError(
                f"requests must be a sequence of (chunks, query) pairs, got "
                f"{type(requests).__name__}"
            )
        reqs = []
        for i, pair in enumerate(requests):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidInputError(f"request {i} must be a (chunks, query) pair")
            reqs.append((check_chunks(pair[0]), check_query(pair[1])))
        unique = list(dict.fromkeys(t for chunks, _ in reqs for t in chunks))
        shared = self.prepare(unique)
        t0 = time.perf_counter()
        queries = sorted({q for _, q in reqs if q is not None})
        if queries:
            self._queries.get(self.encoder, queries)  # one batched pass for new questions
        query_ms = (time.perf_counter() - t0) * 1e3
        n = max(1, len(reqs))
        out = []
        for i, (chunks, query) in enumerate(reqs):
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
        ratio: float | None = None,
        budget: int | None = None,
    ) -> tuple[CompressionResult, Explanation]:
        """Compress and also return the per-unit scores behind the decision."""
        plan = self.plan(self.prepare(chunks), query, ratio=ratio, budget=budget)
        return self.render(plan), plan.explain()

    # -- internals ------------------------------------------------------------------------
    def _prepare_chunk(self, text: str, fp: ChunkFingerprints | None) -> PreparedChunk:
        """Segmentation, costs, force-keep flags and word ids of one chunk, memoised by text.

        Why memoised: a warm compression (fingerprints from the store) otherwise re-segments and
        re-hashes every word of every chunk on each call, about a third of its time; the result
        depends only on the text and this compressor's fixed config and counter.  The cached
        arrays are read-only.
        """
        hit = self._prep_cache.get(text)
        if hit is None or (fp is not None and hit.n_words != fp.n_words):
            clean = model_text(text)
            spans = fp.word_spans if fp is not None else find_words(clean)
            sel = self.config.selection
            units = find_units(clean, spans, sel.max_unit_words, sel.unit)
            costs = self.counter.word_costs(clean, spans)
            matches = match_spans(clean, self._rules, self.config.force_keep_timeout)
            forced = forced_units(matches, spans, units)
            ids = word_ids(clean, spans) if sel.lexical_dedup_threshold is not None else None
            for a in (units, forced, ids):  # word_costs: the counter's own memo
                if a is not None:
                    a.flags.writeable = False
            hit = PreparedChunk(text, spans, units, costs, forced, ids)
            self._prep_cache.put(text, hit)
        if fp is None:
            return hit
        return PreparedChunk(
            text, fp.word_spans, hit.unit_starts, hit.word_costs, hit.forced, hit.word_ids, fp
        )

    def _separator_cost(self) -> int:
        if self._sep_cost is None:
            sep = self.config.separator
            self._sep_cost = self.counter.count(model_text(sep)) if sep else 0
        return self._sep_cost

    def _budgets(
        self, originals: np.ndarray, ratio: float | None, budget: int | None
    ) -> np.ndarray:
        """Token budget(s): one joint budget or one share per chunk, never above the text."""
        total = int(originals.sum())
        if budget is None and ratio is None:
            budget = self.config.budget_tokens
            ratio = self.config.compression_ratio
        if budget is not None:
            budget = min(int(budget), total)  # also keeps huge budgets out of int64 overflow
        if self.config.budget_scope == "joint":
            b = budget if budget is not None else int(float(ratio or 1.0) * total)
            return np.asarray([min(b, total)], dtype=np.int64)
        if budget is not None:
            share = originals / max(total, 1)
            return np.floor(share * budget).astype(np.int64)
        return np.floor(float(ratio or 1.0) * originals).astype(np.int64)


def _load_encoder(config: SemTokenConfig) -> FingerprintEncoder:
    """Build the encoder of ``config`` (under :data:`semtoken_rag.models.LOAD_LOCK`)."""
    from semtoken_rag.encoder import TransformerEncoder

    with models.LOAD_LOCK:
        return TransformerEncoder.from_config(config)


__all__ = ["Compressor"]
