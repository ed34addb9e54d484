"""Persistent fingerprint store (SQLite + FAISS), FAISS redundancy search, ingestion chunking.

Imported lazily (``semtoken_rag.FingerprintStore``); FAISS itself loads only when a search
index is built.
"""

from __future__ import annotations

from semtoken_rag.store.chunking import chunk_words
from semtoken_rag.store.redundancy import SpanIndex, near_duplicates
from semtoken_rag.store.store import FingerprintStore, StoreStats, StoreWarning

__all__ = [
    "FingerprintStore",
    "SpanIndex",
    "StoreStats",
    "StoreWarning",
    "chunk_words",
    "near_duplicates",
]
