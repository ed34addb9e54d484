"""Ingestion: whole documents in, their fingerprints in a store, one report out.

One function, :func:`ingest`, for every entry point; see :mod:`semtoken_rag.ingestion.run`."""

from __future__ import annotations

from semtoken_rag.ingestion.documents import SourceDocument
from semtoken_rag.ingestion.run import (
    DocumentEncodingError,
    IngestOptions,
    IngestReport,
    LocalRunner,
    Runner,
    ingest,
)
from semtoken_rag.ingestion.worker import FailedDocument

__all__ = [
    "DocumentEncodingError",
    "FailedDocument",
    "IngestOptions",
    "IngestReport",
    "LocalRunner",
    "Runner",
    "SourceDocument",
    "ingest",
]
