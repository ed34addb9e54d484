"""Persistent fingerprint store (SQLite + a FAISS/numpy codec), FAISS redundancy search,
ingestion chunking, migration of older stores.

Imported lazily (``semtoken_rag.FingerprintStore``); FAISS itself loads only when a trained
codec or a search is used.
"""

from __future__ import annotations

from semtoken_rag.store.chunking import chunk_words
from semtoken_rag.store.codecs import CODECS, DEFAULT_CODEC, CodecSpec, get_codec
from semtoken_rag.store.gpu import FaissBuild, faiss_build
from semtoken_rag.store.migrate import MigrationReport, migrate
from semtoken_rag.store.redundancy import SpanIndex, near_duplicates
from semtoken_rag.store.store import FingerprintStore
from semtoken_rag.store.types import StoreDamagedError, StoreStats, StoreWarning

__all__ = [
    "CODECS",
    "DEFAULT_CODEC",
    "CodecSpec",
    "FaissBuild",
    "FingerprintStore",
    "MigrationReport",
    "SpanIndex",
    "StoreDamagedError",
    "StoreStats",
    "StoreWarning",
    "chunk_words",
    "faiss_build",
    "get_codec",
    "migrate",
    "near_duplicates",
]
