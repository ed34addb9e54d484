"""``SemTokenIngestor``: fill the fingerprint store from LangChain ``Document``s.

A ``BaseDocumentTransformer`` (sync and async) that returns its input unchanged and writes the
fingerprints of every document into the store the :class:`SemTokenCompressor` reads.  Put it
before the splitter (whole documents: any chunking later is served from the store) or after
it (each chunk is then a short document of its own)::

    docs = TextLoader("report.txt").load()
    SemTokenIngestor(store_dir="fp-store").transform_documents(docs)
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000).split_documents(docs)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import BaseDocumentTransformer, Document
from pydantic import ConfigDict, Field, model_validator
from semtoken_rag.adapter_stores import StoreDir, require_store
from semtoken_rag.adapters import (
    ENCODER_MIRRORED,
    EncoderFields,
    adopt_engine,
    as_items,
    config_from_fields,
)
from semtoken_rag.config import SemTokenConfig

from langchain_semtoken.sources import document_names

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor
    from semtoken_rag.ingestion import IngestReport


class SemTokenIngestor(EncoderFields, BaseDocumentTransformer):
    """Writes the fingerprints of documents into a fingerprint store (ingestion).

    Give it the same ``store_dir`` (or ``store``) and encoder settings as the
    :class:`SemTokenCompressor`, or build it with ``compressor.ingestor()`` (same engine: one
    model in memory).  Documents are recorded under ``metadata["source"]`` and ``id``, which a
    retrieved chunk carries as a hint.  ``encoder_model`` and ``device`` are the fields that
    matter (the store key depends on nothing else).
    """

    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Other encoder fields of :class:`semtoken_rag.SemTokenConfig` (``window_tokens``...)."""
    store_dir: StoreDir = None
    """Directory of the persistent fingerprint store (created on first use)."""
    store: Any | None = Field(default=None, exclude=True, repr=False)
    """A fingerprint store object (a ``semtoken_rag.store.FingerprintStore``)."""
    show_progress: bool = False
    """Show a progress bar (words) while encoding."""
    last_report: Any = Field(default=None, exclude=True, repr=False)
    """The :class:`semtoken_rag.ingestion.IngestReport` of the last call."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @model_validator(mode="after")
    def _validate_engine_config(self) -> SemTokenIngestor:
        require_store(self.store, self.store_dir, "SemTokenIngestor")
        self.semtoken_config()
        return self

    @classmethod
    def from_engine(cls, engine: Compressor, **kwargs: Any) -> SemTokenIngestor:
        """Wrap an existing engine (its encoder and store are shared, no second model).

        Raises:
            ConfigError: ``kwargs`` sets a config field or the store (they come from the engine).
        """
        return adopt_engine(cls, engine, None, kwargs)

    def semtoken_config(self) -> SemTokenConfig:
        """The engine configuration (only its encoder fields matter for fingerprints)."""
        return config_from_fields(self, "joint", self.engine_options, ENCODER_MIRRORED)

    @property
    def engine(self) -> Compressor:
        """The :class:`semtoken_rag.Compressor` whose encoder and store are used."""
        return self._slot.get(self.semtoken_config(), self.store, self.store_dir, encoder_only=True)

    def transform_documents(
        self, documents: Sequence[Document], **kwargs: Any
    ) -> Sequence[Document]:
        """Fingerprint ``documents`` into the store; return them unchanged."""
        from semtoken_rag.ingestion import IngestOptions, SourceDocument

        docs = as_items(documents, Document, "documents")
        sources = [SourceDocument(d.page_content, document_names(d)) for d in docs]
        report: IngestReport = self.engine.ingest(
            sources, IngestOptions(progress=self.show_progress)
        )
        self.last_report = report
        # The input itself (a one-shot iterable, already consumed, as the list it yielded).
        return documents if isinstance(documents, Sequence) else docs

    async def atransform_documents(
        self, documents: Sequence[Document], **kwargs: Any
    ) -> Sequence[Document]:
        """:meth:`transform_documents` in a worker thread (the event loop is not blocked)."""
        return await asyncio.to_thread(self.transform_documents, documents, **kwargs)
