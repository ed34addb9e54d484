"""Format 1 of the store (semtoken-rag before the codecs), read only to migrate it.

Frozen: format 1 kept float32 vectors (``<f4``) and int64 spans (``<i8``) in ``entries``, with
a sha256 checksum over ``key\\0n\\0d\\0`` + vectors + spans, and a flat FAISS index file
``vectors.faiss`` beside the database.  :mod:`semtoken_rag.store.migrate` reads rows through
:func:`read_v1_row`, which verifies that checksum, so a damaged row is reported, never
migrated.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: The format-1 table of entries (for migration and for tests that build a format-1 store).
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    n_words INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    last_used REAL NOT NULL,
    checksum BLOB NOT NULL,
    vectors BLOB NOT NULL,
    spans BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries(last_used, id);
"""
#: The format-1 search index file (a derived cache; dropped by the migration).
V1_INDEX_NAME = "vectors.faiss"


def v1_checksum(key: str, n_words: int, dim: int, vec: bytes, spans: bytes) -> bytes:
    """The per-row digest of format 1."""
    h = hashlib.sha256()
    h.update(f"{key}\0{n_words}\0{dim}\0".encode())
    h.update(vec)
    h.update(spans)
    return h.digest()


def read_v1_row(
    key: str, n_words: int, dim: int, csum: bytes, vec: bytes, spans: bytes
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(vectors float32 (n, d), spans int64 (n, 2))`` of a format-1 row, ``None`` if damaged."""
    if v1_checksum(key, n_words, dim, vec, spans) != csum:
        return None
    if len(vec) != n_words * dim * 4 or len(spans) != n_words * 16:
        return None
    vectors = np.frombuffer(vec, dtype="<f4").reshape(n_words, dim).astype(np.float32)
    word_spans = np.frombuffer(spans, dtype="<i8").reshape(n_words, 2).astype(np.int64)
    return vectors, word_spans
