"""What a LangChain ``Document`` says about where it came from (shared by the compressor, which
passes it to the store as a hint, and the ingestor, which records it)."""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document
from semtoken_rag.adapters import chunk_source
from semtoken_rag.fingerprints import ChunkSource


def document_names(doc: Document) -> tuple[str, ...]:
    """Names an ingested document is recorded under: ``metadata["source"]`` (what loaders set
    and splitters copy to every chunk) and ``Document.id``."""
    names: list[Any] = [doc.metadata.get("source"), doc.id]
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def document_source(doc: Document) -> ChunkSource | None:
    """The hint a retrieved chunk gives the store: its ``metadata["source"]`` (else its id) and
    ``metadata["start_index"]`` (from a splitter with ``add_start_index=True``)."""
    names = document_names(doc)
    return chunk_source(names[0] if names else None, doc.metadata.get("start_index"))
