"""The writer's statements, inside its one write transaction: inserts, the codec's training,
LRU eviction (a ``documents`` row deleted: the triggers delete the rest).

Training (docs/store.md, "Training") samples every staged vector in document-key order (so Ray's
commit order changes nothing) and re-encodes the staged blocks in the same transaction: after a
crash the store is untrained with every staged block, or trained with all of them re-encoded.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.inputs import check_strings, model_text
from semtoken_rag.store.codebooks import Codebook, Codebooks, runtime_codec
from semtoken_rag.store.codecs import STAGING, train, training_sample
from semtoken_rag.store.db import BLOCK_BITS, block_range, read_counters, select_in
from semtoken_rag.store.encoding import (
    DocumentFingerprints,
    EncodedDocument,
    block_checksum,
    check_document,
    code_vectors,
    encode_blocks,
)
from semtoken_rag.store.types import CodebookChangedError
from semtoken_rag.store.words import unpack

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
    """An encoder's ``cache_id``: a non-empty string SQLite can hold (no lone surrogates)."""
    if not isinstance(encoder_id, str) or not encoder_id:
        raise InvalidInputError(f"encoder_id must be a non-empty str, got {encoder_id!r:.60}")
    if model_text(encoder_id) != encoder_id:
        raise InvalidInputError(
            f"encoder_id must be valid Unicode (a lone surrogate in {encoder_id!r:.60})"
        )
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


#: Largest vector dimension a store takes: far above any encoder's, and quick for codecs._pq_m.
MAX_DIM = 1 << 16


def check_dim(dim: Any) -> int:
    """A vector dimension: a positive int, at most :data:`MAX_DIM`."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise InvalidInputError(f"dim must be a positive int, got {dim!r:.60}")
    if int(dim) > MAX_DIM:
        raise InvalidInputError(f"dim must be at most {MAX_DIM}, got {dim!r:.60}")
    return int(dim)


def finite_documents(
    texts: Sequence[str], fingerprints: Sequence[ChunkFingerprints], encoder_id: str
) -> list[DocumentFingerprints]:
    """Texts with their fingerprints as documents (arguments checked), leaving out (logged)
    non-finite vectors and vector counts other than the text's words (no lookup serves them)."""
    texts = check_strings(texts, "texts")
    fingerprints = check_fingerprints(fingerprints, len(texts))
    encoder_id = check_encoder_id(encoder_id)
    docs = []
    for text, fp in zip(texts, fingerprints, strict=True):
        doc = DocumentFingerprints(fingerprint_key(text, encoder_id), text, fp)
        try:
            check_document(doc)
            n_words = len(find_words(model_text(text)))
            if fp.n_words != n_words:
                raise InvalidInputError(
                    f"{fp.n_words} fingerprints for document {doc.key[:12]}… of {n_words} words"
                )
            docs.append(doc)
        except InvalidInputError as exc:
            logger.warning("not stored: %s", exc)
    return docs


def check_codebooks(books: Codebooks, docs: Sequence[EncodedDocument], where: str) -> None:
    """Refuse documents encoded with a codebook the store does not hold with that digest.

    Raises:
        CodebookChangedError: naming the codebook (nothing is written).
    """
    for doc in docs:
        for cid, digest in doc.digests.items():
            book = books.by_id.get(cid)
            if book is None or book.sha256 != digest:
                raise CodebookChangedError(
                    f"document {doc.key[:12]}… was encoded with codebook {cid}, which {where} "
                    "does not hold (its codec changed, or the store was replaced, while the "
                    "ingestion ran); nothing was written: restart the ingestion"
                )


def insert_documents(conn: sqlite3.Connection, docs: Sequence[EncodedDocument]) -> int:
    """Inside a write transaction: insert documents not stored yet (all of them gain their
    names); returns how many were inserted.  Shingles are inserted sorted by hash (the index's
    key), so each index page is touched once."""
    sql = "SELECT key, id FROM documents WHERE key IN ({})"
    present = {str(k): int(i) for k, i in select_in(conn, sql, [d.key for d in docs])}
    encoders = [(e,) for e in dict.fromkeys(d.encoder for d in docs)]
    conn.executemany("INSERT OR IGNORE INTO encoders(cache_id) VALUES (?)", encoders)
    now, added = time.time(), 0
    shingles: list[tuple[int, int, int]] = []
    names: list[tuple[str, int]] = []
    for d in docs:
        doc_id = present.get(d.key)
        if doc_id is None:
            doc_id = _insert_one(conn, d, now)
            shingles += zip(d.shingles.tolist(), [doc_id] * len(d.shingles), d.positions.tolist())
            present[d.key] = doc_id
            added += 1
        names += [(model_text(name), doc_id) for name in d.names]  # SQLite binds UTF-8
    shingles.sort()
    conn.executemany(
        "INSERT OR IGNORE INTO shingles(hash, document, word) VALUES (?, ?, ?)", shingles
    )
    conn.executemany("INSERT OR IGNORE INTO names(name, document) VALUES (?, ?)", names)
    return added


def _insert_one(conn: sqlite3.Connection, d: EncodedDocument, now: float) -> int:
    cur = conn.execute(
        "INSERT INTO documents(key, encoder, n_words, dim, nbytes, last_used) "
        "VALUES (?, (SELECT id FROM encoders WHERE cache_id = ?), ?, ?, ?, ?)",
        (d.key, d.encoder, d.n_words, d.dim, d.nbytes, now),
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
    sql = "INSERT OR IGNORE INTO names(name, document) SELECT ?, id FROM documents WHERE key = ?"
    conn.executemany(sql, [(model_text(n), model_text(k)) for k, ns in names.items() for n in ns])


def evict_lru(conn: sqlite3.Connection, max_bytes: int) -> int:
    """Inside a write transaction: delete least recently used documents (oldest ``last_used``,
    then oldest id) until the payload fits ``max_bytes``; the newest document always stays.
    Returns how many were evicted."""
    counts = read_counters(conn)
    total, remaining = counts["payload_bytes"], counts["documents"]
    if total <= max_bytes:
        return 0
    doomed: list[int] = []
    freed = 0
    for doc, nbytes in conn.execute("SELECT id, nbytes FROM documents ORDER BY last_used, id"):
        if total - freed <= max_bytes or remaining - len(doomed) <= 1:
            break
        doomed.append(int(doc))
        freed += int(nbytes)
    conn.executemany("DELETE FROM documents WHERE id = ?", [(d,) for d in doomed])
    logger.info("evicted %d documents (%d bytes) to stay under %d", len(doomed), freed, max_bytes)
    return len(doomed)


def reclaim_pages(conn: sqlite3.Connection) -> None:
    """After the commit of a write that trained a codec: hand the freed float16 staging pages
    back to the file system (``executescript``: ``execute`` would vacuum only one page).  Best
    effort, logged: a full disk must not make ``write`` report committed documents as not stored.
    """
    try:
        conn.executescript("PRAGMA incremental_vacuum;")
    except sqlite3.Error as exc:
        logger.warning("freed pages not handed back to the file system (%s); reused by writes", exc)
        if conn.in_transaction:  # a connection left in a transaction would refuse every BEGIN
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")


_STAGED = (
    "SELECT b.id, b.n_words, b.checksum, b.codes, b.words, d.id, d.key, d.dim, b.start "
    "FROM blocks b "
    f"JOIN documents d ON d.id = b.id >> {BLOCK_BITS} WHERE b.codebook = ? ORDER BY d.key, b.id"
)


def maybe_train(conn: sqlite3.Connection, books: Codebooks, docs: list[EncodedDocument]) -> bool:
    """Inside a write transaction: train the codec for each dimension whose staged words
    reached ``train_min``; whether one was (then reclaim the freed pages after commit)."""
    spec = books.spec
    trained = False
    for dim in sorted({d.dim for d in docs}):
        staging = books.find(STAGING.name, dim)
        if not spec.trained or staging is None or books.find(spec.name, dim) is not None:
            continue
        row = conn.execute("SELECT n_words FROM codebooks WHERE id = ?", (staging.id,)).fetchone()
        if row is not None and int(row[0]) >= spec.train_min:
            trained |= _train(conn, books, dim, staging, docs[0].encoder)
    return trained


def _train(conn: sqlite3.Connection, books: Codebooks, dim: int, book: Codebook, enc: str) -> bool:
    t0 = time.perf_counter()
    rows = []
    for bid, n, csum, codes, words, doc, key, d, start in conn.execute(_STAGED, (book.id,)):
        digest = block_checksum(key, bid & ((1 << BLOCK_BITS) - 1), n, d, book.sha256,
                                bytes(codes), bytes(words))  # fmt: skip
        if d == dim and digest == bytes(csum):  # a damaged block stays as it is (a miss later)
            packed = unpack(bytes(words), n)
            rows.append((bid, n, bytes(codes), packed, doc, key, len(words), start))
    if not rows:
        return False
    staged = runtime_codec(book)
    decoded = staged.decode(
        np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(-1, staged.code_size)
    )
    sample = training_sample(decoded, books.spec)
    if len(sample) < books.spec.train_min:  # damaged blocks left too few: train later
        return False
    factory, state, cos = train(books.spec, sample)
    books.add(conn, books.spec.name, dim, factory, state, cos, len(sample), enc)
    codecs = books.codec_set(conn, dim)
    codes, cosines = code_vectors(decoded, codecs)
    lo = freed = 0
    for bid, n, old, words, doc, key, old_words, start in rows:
        hi = lo + n
        block = encode_blocks(key, decoded[lo:hi], words, codes[lo:hi],
                              None if cosines is None else cosines[lo:hi], codecs, [start],
                              first=bid & ((1 << BLOCK_BITS) - 1))[0]  # fmt: skip
        conn.execute(
            "UPDATE blocks SET codebook = ?, checksum = ?, codes = ?, words = ? WHERE id = ?",
            (block.codebook, block.checksum, block.codes, block.words, bid),
        )
        delta = len(block.codes) + len(block.words) - len(old) - old_words
        conn.execute("UPDATE documents SET nbytes = nbytes + ? WHERE id = ?", (delta, doc))
        freed -= delta
        lo = hi
    logger.info(
        "codec %s trained for dim %d in %.1f s; %d staged blocks re-encoded, %d bytes freed",
        books.spec.name, dim, time.perf_counter() - t0, len(rows), freed,
    )  # fmt: skip
    return True


class Touches:
    """LRU refreshes of served documents, buffered: a lookup never waits for the write lock
    (LRU time is advisory), and a document is refreshed at most once per ``interval`` seconds;
    written with the next write, or once :data:`FLUSH_AT` are pending."""

    FLUSH_AT = 512

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.pending: dict[int, float] = {}

    def note(self, served: Mapping[int, float]) -> bool:
        """Buffer refreshes of the documents served (id -> last used); whether enough are
        pending to write them now."""
        now = time.time()
        self.pending.update({d: now for d, used in served.items() if now - used >= self.interval})
        return len(self.pending) >= self.FLUSH_AT

    def write(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: write the pending refreshes and forget them."""
        rows = [(t, i) for i, t in self.pending.items()]
        conn.executemany("UPDATE documents SET last_used = ? WHERE id = ?", rows)
        self.pending.clear()

    def clear(self) -> None:
        """Forget the pending refreshes (they name rows of a database no longer used)."""
        self.pending.clear()
