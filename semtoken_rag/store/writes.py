"""The writer's statements: encoded documents in, rows out (inside the caller's transaction).

The writer does not encode: documents arrive as codes made where the encoder ran
(:mod:`semtoken_rag.store.encoding`).  It checks that their codebooks are the store's and
inserts the rows; the database's triggers keep the counters.
"""

from __future__ import annotations

import logging
import numbers
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.inputs import check_strings
from semtoken_rag.store.codebooks import Codebooks
from semtoken_rag.store.db import block_range, select_in
from semtoken_rag.store.encoding import DocumentFingerprints, EncodedDocument, check_document
from semtoken_rag.store.types import CodebookChangedError

logger = logging.getLogger(__name__)


def check_encoded(docs: Any) -> list[EncodedDocument]:
    """Encoded documents as a list (typed error for anything else)."""
    if isinstance(docs, (str, bytes, EncodedDocument)) or not isinstance(docs, Iterable):
        raise InvalidInputError(f"docs must be a sequence of EncodedDocument, got {docs!r:.60}")
    out = list(docs)
    for i, d in enumerate(out):
        if not isinstance(d, EncodedDocument):
            raise InvalidInputError(f"docs[{i}] is a {type(d).__name__}, not an EncodedDocument")
    return out


def check_encoder_id(encoder_id: Any) -> str:
    """An encoder's ``cache_id``: a non-empty string."""
    if not isinstance(encoder_id, str) or not encoder_id:
        raise InvalidInputError(f"encoder_id must be a non-empty str, got {encoder_id!r:.60}")
    return encoder_id


def check_fingerprints(fps: Any, n: int) -> list[ChunkFingerprints]:
    """``n`` :class:`ChunkFingerprints`, one per text."""
    items = list(fps) if isinstance(fps, Iterable) else None
    if items is None or len(items) != n:
        raise InvalidInputError(f"expected {n} ChunkFingerprints (one per text), got {fps!r:.60}")
    for i, fp in enumerate(items):
        if not isinstance(fp, ChunkFingerprints):
            raise InvalidInputError(f"fingerprints[{i}] is a {type(fp).__name__}")
    return items


def check_names(names: Any) -> dict[str, tuple[str, ...]]:
    """``{document key: names}`` with string keys and sequences of strings."""
    if not isinstance(names, Mapping):
        raise InvalidInputError(f"names must be a mapping of key -> names, got {names!r:.60}")
    out = {}
    for key, value in names.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"names: key {key!r:.60} is not a str")
        out[key] = tuple(check_strings(value, f"names[{key[:12]}…]"))
    return out


def check_dim(dim: Any) -> int:
    """A vector dimension: a positive int."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise InvalidInputError(f"dim must be a positive int, got {dim!r:.60}")
    return int(dim)


def finite_documents(
    texts: Sequence[str], fingerprints: Sequence[ChunkFingerprints], encoder_id: str
) -> list[DocumentFingerprints]:
    """Texts with their fingerprints as documents (arguments checked), leaving out (and
    logging) any the store must not hold (non-finite vectors)."""
    texts = check_strings(texts, "texts")
    fingerprints = check_fingerprints(fingerprints, len(texts))
    encoder_id = check_encoder_id(encoder_id)
    docs = []
    for text, fp in zip(texts, fingerprints, strict=True):
        doc = DocumentFingerprints(fingerprint_key(text, encoder_id), text, fp)
        try:
            check_document(doc)
        except InvalidInputError as exc:
            logger.warning("not stored: %s", exc)
            continue
        docs.append(doc)
    return docs


def check_codebooks(books: Codebooks, docs: Sequence[EncodedDocument], where: str) -> None:
    """Refuse documents encoded with a codebook the store does not hold with that digest.

    Raises:
        CodebookChangedError: naming the codebook (nothing is written).
    """
    for doc in docs:
        for cid, digest in doc.digests.items():
            book = books.get(cid)
            if book is None or book.sha256 != digest:
                raise CodebookChangedError(
                    f"document {doc.key[:12]}… was encoded with codebook {cid}, which {where} "
                    "does not hold (its codec changed, or the store was replaced, while the "
                    "ingestion ran); nothing was written: restart the ingestion"
                )


class EncoderRows:
    """Row ids of encoder identities in ``encoders`` (memoised: they never change)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def row(self, conn: sqlite3.Connection, cache_id: str, *, create: bool) -> int | None:
        """The id of ``cache_id`` (inserted first when ``create``, inside a write transaction;
        ``None`` when absent and not created)."""
        if cache_id not in self._ids:
            if create:
                conn.execute("INSERT OR IGNORE INTO encoders(cache_id) VALUES (?)", (cache_id,))
            row = conn.execute("SELECT id FROM encoders WHERE cache_id = ?", (cache_id,)).fetchone()
            if row is None:
                return None
            self._ids[cache_id] = int(row[0])
        return self._ids[cache_id]


def insert_documents(
    conn: sqlite3.Connection, docs: Sequence[EncodedDocument], encoders: EncoderRows
) -> int:
    """Insert documents not stored yet (all of them gain their names).

    The batch's shingles go in one statement sorted by hash: the shingle index is keyed by
    hash, so sorted inserts touch each page once instead of once per document.

    Args:
        conn: The store's connection, inside a write transaction.
        docs: Encoded documents.
        encoders: The store's encoder rows (a new encoder identity is recorded).

    Returns:
        Documents inserted.
    """
    sql = "SELECT key, id FROM documents WHERE key IN ({})"
    present = {str(k): int(i) for k, i in select_in(conn, sql, [d.key for d in docs])}
    now, added = time.time(), 0
    shingles: list[tuple[int, int, int]] = []
    names: list[tuple[str, int]] = []
    for d in docs:
        doc_id = present.get(d.key)
        if doc_id is None:
            doc_id = _insert_one(conn, d, int(encoders.row(conn, d.encoder, create=True) or 0), now)
            shingles += zip(d.shingles.tolist(), [doc_id] * len(d.shingles), d.positions.tolist())
            present[d.key] = doc_id
            added += 1
        names += [(name, doc_id) for name in d.names]
    shingles.sort()
    conn.executemany(
        "INSERT OR IGNORE INTO shingles(hash, document, word) VALUES (?, ?, ?)", shingles
    )
    conn.executemany("INSERT OR IGNORE INTO names(name, document) VALUES (?, ?)", names)
    return added


def _insert_one(conn: sqlite3.Connection, d: EncodedDocument, encoder: int, now: float) -> int:
    cur = conn.execute(
        "INSERT INTO documents(key, encoder, n_words, dim, nbytes, last_used) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (d.key, encoder, d.n_words, d.dim, d.nbytes, now),
    )
    doc_id = int(cur.lastrowid or 0)
    base = block_range(doc_id)[0]
    conn.executemany(
        "INSERT INTO blocks(id, start, codebook, n_words, checksum, codes, words) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(base + b.index, b.start, b.codebook, b.n_words, b.checksum, b.codes, b.words)
         for b in d.blocks],
    )  # fmt: skip
    return doc_id


def insert_names(conn: sqlite3.Connection, names: Mapping[str, Sequence[str]]) -> None:
    """Inside a write transaction: record names of stored documents, by key."""
    rows = list(select_in(conn, "SELECT key, id FROM documents WHERE key IN ({})", list(names)))
    conn.executemany(
        "INSERT OR IGNORE INTO names(name, document) VALUES (?, ?)",
        [(n, int(doc)) for key, doc in rows for n in names[key]],
    )
