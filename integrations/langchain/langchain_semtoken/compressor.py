"""``SemTokenCompressor``: semtoken-rag as a LangChain ``BaseDocumentCompressor``.

A thin adapter: pydantic fields mirror :class:`semtoken_rag.SemTokenConfig` (declared once, in
:class:`semtoken_rag.adapters.CompressionFields`), the engine
(:class:`semtoken_rag.Compressor`) does all the work, and this module only translates
``Document`` objects to strings and results back to ``Document`` objects plus metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, model_validator
from semtoken_rag.adapter_stores import StoreDir, check_store
from semtoken_rag.adapters import (
    CompressionFields,
    ScopeName,
    adopt_engine,
    as_items,
    chunk_metadata,
    config_from_fields,
)
from semtoken_rag.config import SemTokenConfig

from langchain_semtoken.ingestor import SemTokenIngestor
from langchain_semtoken.sources import document_source

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor
    from semtoken_rag.results import CompressionResult

#: Key under which each output document carries what was kept.
METADATA_KEY = "semtoken"


class SemTokenCompressor(CompressionFields, BaseDocumentCompressor):
    """Query-aware semantic compression of retrieved documents (semtoken-rag).

    Every document is shortened to the sentences that best answer the query, near-duplicates
    across documents are skipped, and one token budget is spent over all documents together
    (``budget_scope="joint"``) or split in proportion to their lengths (``"per_document"``).

    Output contract (what LangChain users can rely on):

    * documents keep their input order, their ``id`` and their metadata (a shallow copy: the
      input documents are never mutated);
    * each gains ``metadata["semtoken"] = {"offsets": [[start, end], ...], "original_tokens",
      "kept_tokens", "ratio"}``; ``offsets`` are character offsets of the kept pieces in the
      ``page_content`` this compressor received, so ``original[s:e]`` is verbatim; with
      ``compression_ratio="auto"`` also ``"budget_choice"``
      (the budget the call chose and why);
    * a document compressed to nothing is **dropped** (``drop_empty=True``), like
      ``EmbeddingsFilter`` drops irrelevant documents and ``LLMChainExtractor`` drops empty
      extractions: an empty ``page_content`` only wastes a prompt slot.  Set
      ``drop_empty=False`` to keep one output per input (e.g. to zip results with inputs).

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever
        >>> compressor = SemTokenCompressor(compression_ratio=0.4)  # doctest: +SKIP
        >>> retriever = ContextualCompressionRetriever(  # doctest: +SKIP
        ...     base_compressor=compressor, base_retriever=vector_store.as_retriever(k=8)
        ... )

    The engine is built on first use (so constructing the compressor loads no model) and is
    rebuilt if a field is changed afterwards.  Pass ``store=`` (any object with the methods of
    ``semtoken_rag.protocols.FingerprintStoreProtocol``, e.g. a
    ``semtoken_rag.store.FingerprintStore``) or ``store_dir=`` to share
    fingerprints with ingestion and with the LlamaIndex postprocessor.

    The engine knobs of :data:`semtoken_rag.adapters.MIRRORED` are typed fields inherited from
    :class:`semtoken_rag.adapters.CompressionFields`; any invalid value raises
    :class:`semtoken_rag.ConfigError` (a ``ValueError``) at construction.
    """

    budget_scope: ScopeName = "joint"
    """One budget over all documents (``joint``) or one share per document (``per_document``;
    ``per_chunk`` and ``per_node`` are the same, spelled as the engine and LlamaIndex do)."""
    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Any other :class:`semtoken_rag.SemTokenConfig` field (``unit``, ``separator``, ...)."""
    store_dir: StoreDir = None
    """Directory of a persistent fingerprint store (opened on first use)."""
    store: Any | None = Field(default=None, exclude=True, repr=False)
    """A fingerprint store object (``semtoken_rag.protocols.FingerprintStoreProtocol``), e.g.
    shared with LlamaIndex."""
    drop_empty: bool = True
    """Drop documents compressed to nothing (see the class docstring)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @model_validator(mode="after")
    def _validate_engine_config(self) -> SemTokenCompressor:
        # Fail at construction, not at the first query: the engine config validates everything.
        check_store(self.store, self.store_dir)
        self.semtoken_config()
        return self

    @classmethod
    def from_engine(cls, engine: Compressor, **kwargs: Any) -> SemTokenCompressor:
        """Wrap an existing engine (shares its encoder, store and counter; no second model).

        Args:
            engine: A :class:`semtoken_rag.Compressor`.
            **kwargs: Adapter-only fields, e.g. ``drop_empty``.

        Raises:
            ConfigError: ``kwargs`` sets a config field or the store (they come from the engine).
        """
        return adopt_engine(cls, engine, "per_document", kwargs)

    def ingestor(self, **kwargs: Any) -> SemTokenIngestor:
        """A :class:`SemTokenIngestor` writing the store this compressor reads (same engine:
        same encoder settings, same store, one model in memory)."""
        return adopt_engine(SemTokenIngestor, self.engine, None, kwargs, self.store_dir)

    def semtoken_config(self) -> SemTokenConfig:
        """The engine configuration these fields describe."""
        return config_from_fields(self, self.budget_scope, self.engine_options)

    @property
    def engine(self) -> Compressor:
        """The :class:`semtoken_rag.Compressor` doing the work (built lazily, thread-safe)."""
        return self._slot.get(self.semtoken_config(), self.store, self.store_dir)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Compress ``documents`` for ``query`` (see the class docstring for the contract)."""
        docs = as_items(documents, Document, "documents")
        if not docs:
            return []
        result = self.engine.compress(
            [d.page_content for d in docs], query, sources=[document_source(d) for d in docs]
        )
        return self._to_documents(docs, result)

    def _to_documents(self, docs: list[Document], result: CompressionResult) -> list[Document]:
        out = []
        for doc, chunk in zip(docs, result.chunks, strict=True):
            if self.drop_empty and not chunk.text:
                continue
            # model_copy keeps the id, the subclass and any extra state of the input document.
            out.append(
                doc.model_copy(
                    update={
                        "page_content": chunk.text,
                        "metadata": {**doc.metadata, METADATA_KEY: chunk_metadata(chunk, result)},
                    }
                )
            )
        return out
