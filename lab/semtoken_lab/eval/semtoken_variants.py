"""SemToken and its ablations as harness methods: one :class:`~semtoken_rag.Compressor` each,
built from a factory of config overrides and store choices.

Why one factory: the variants differ only in a few :class:`~semtoken_rag.config.SemTokenConfig`
fields or in where the fingerprints come from (encoded alone, a codec's store, whole documents),
so they share the encoder and the fingerprint store of :meth:`MethodEnv.semtoken_parts`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from semtoken_lab.eval.method_env import Method, MethodEnv
from semtoken_lab.eval.selection import CHUNK_SEP

logger = logging.getLogger(__name__)


class SemTokenMethod:
    """A SemToken variant: one :class:`~semtoken_rag.Compressor` over its store.

    Args:
        comp: The compressor.
        use_query: Pass the question (``False``: the query-free ablation).
        ingest_chunks: Ingest each call's chunks into the compressor's store first (each a
            short document), so every fingerprint is read back out of the store.
        from_store: Every chunk is expected to be served by the store (the store variants):
            a call that had to encode a chunk is logged as a warning.

    Attributes:
        calls: Compressions run.
        encoder_calls: Chunks encoded at query time over all calls (a chunk the store did not
            serve; 0 for ``semtoken-docs`` in ``rag`` mode, whose chunks are verbatim windows
            of the ingested documents).
        calls_missed: Calls with at least one such chunk.
    """

    def __init__(
        self, comp: Any, *, use_query: bool = True, ingest_chunks: bool = False,
        from_store: bool = False, name: str = "semtoken",
    ) -> None:  # fmt: skip
        self.comp = comp
        self.use_query = use_query
        self.ingest_chunks = ingest_chunks
        self.from_store = from_store
        self.name = name
        self.calls = self.encoder_calls = self.calls_missed = 0
        self._lock = threading.Lock()

    def __call__(self, chunks: Sequence[str], question: str, budget: int) -> str:
        """Compress for ``question`` under ``budget`` reader tokens."""
        return self._run(chunks, question, budget=budget)

    def auto(self, chunks: Sequence[str], question: str) -> str:
        """Compress for ``question`` with the engine's ``compression_ratio="auto"`` budget."""
        return self._run(chunks, question, ratio="auto")

    def _run(self, chunks: Sequence[str], question: str, **budget: Any) -> str:
        if self.ingest_chunks:
            from semtoken_rag.ingestion import IngestOptions

            self.comp.ingest(list(chunks), IngestOptions(progress=False))
        query = question if self.use_query else None
        res = self.comp.compress(list(chunks), query, **budget)
        with self._lock:
            self.calls += 1
            self.encoder_calls += res.encoder_calls
            self.calls_missed += bool(res.encoder_calls)
        if self.from_store and res.encoder_calls:
            logger.warning(
                "%s: %d of %d chunks were not served from the store (encoded alone) for %r",
                self.name, res.encoder_calls, len(chunks), question[:80],
            )  # fmt: skip
        return str(res.joined(CHUNK_SEP))

    def summary(self) -> str:
        """One line: calls, and chunks the store did not serve."""
        return (
            f"{self.name}: {self.calls} compressions, {self.encoder_calls} chunks encoded at "
            f"query time ({self.calls_missed} compressions with a chunk not from the store)"
        )


def semtoken_variant(
    use_query: bool = True,
    store_codec: str | None = None,
    documents: bool = False,
    name: str = "semtoken",
    **overrides: Any,
) -> Callable[[MethodEnv], Method]:
    """SemToken with ``overrides`` of its config.

    Args:
        use_query: Pass the question (``False``: the query-free ablation).
        store_codec: Read every fingerprint back from an in-memory store of this codec
            (:mod:`semtoken_lab.eval.store_methods`): each example's chunks are ingested first,
            so the compressor sees exactly what a deployment that ingested its corpus gets.
        documents: Read every fingerprint from a float32 in-memory store into which every
            document of the run (:attr:`MethodEnv.documents`) was ingested whole before the
            first example: each chunk is served sliced from its document, never encoded alone
            (:func:`semtoken_lab.eval.store_methods.document_store`).
        name: The method's name (in its log lines).
        overrides: :class:`~semtoken_rag.config.SemTokenConfig` fields.
    """

    def factory(env: MethodEnv) -> Method:
        from semtoken_rag.compressor import Compressor
        from semtoken_rag.config import SemTokenConfig

        encoder, store = env.semtoken_parts()
        if store_codec is not None:
            from semtoken_lab.eval.store_methods import trained_store

            store = trained_store(encoder, store_codec)
        elif documents:
            from semtoken_rag.errors import InvalidInputError

            from semtoken_lab.eval.store_methods import document_store

            if env.documents is None:
                raise InvalidInputError(
                    f"{name} needs the run's documents (MethodEnv.documents, set by "
                    "Runner.contexts before the methods are built)"
                )
            store = document_store(encoder, env.documents)
        cfg = SemTokenConfig(count_tokenizer=env.reader, **overrides)
        comp = Compressor(cfg, encoder=encoder, store=store, counter=env.counter())
        return SemTokenMethod(
            comp,
            use_query=use_query,
            ingest_chunks=store_codec is not None,
            from_store=store_codec is not None or documents,
            name=name,
        )

    return factory
