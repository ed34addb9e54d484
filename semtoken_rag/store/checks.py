"""Inspecting a store: its statistics (``FingerprintStore.stats``) and the full consistency
check (``FingerprintStore.verify``, ``store info --check``).

The check reads every block once in one snapshot: SQLite's own ``quick_check``, every codebook's
digest, every block's checksum and words, every document's blocks, and the trigger-kept
counters against the rows.  Nothing is changed.
"""

from __future__ import annotations

import sqlite3

from semtoken_rag.store import db
from semtoken_rag.store.codebooks import Codebook, Codebooks
from semtoken_rag.store.codecs import STAGING
from semtoken_rag.store.encoding import block_checksum
from semtoken_rag.store.types import StoreStats
from semtoken_rag.store.words import unpack

_BLOCKS = (
    f"SELECT b.id, b.codebook, b.n_words, b.checksum, b.codes, b.words, d.key, d.dim "
    f"FROM blocks b LEFT JOIN documents d ON d.id = b.id >> {db.BLOCK_BITS} ORDER BY b.id"
)


def collect_stats(
    conn: sqlite3.Connection, books: Codebooks, hits: int, misses: int, size: int
) -> StoreStats:
    """The store's counters (kept by its triggers) and this process's hits and misses."""
    counts = db.read_counters(conn)
    staged = 0
    if books.spec.trained:
        sql = "SELECT COALESCE(SUM(n_words), 0) FROM codebooks WHERE codec = ?"
        staged = int(conn.execute(sql, (STAGING.name,)).fetchone()[0])
    return StoreStats(
        hits=hits,
        misses=misses,
        documents=counts["documents"],
        words=counts["words"],
        payload_bytes=counts["payload_bytes"],
        bytes_on_disk=size,
        codec=books.spec.name,
        trained=books.trained,
        staged_words=staged,
    )


def verify_database(conn: sqlite3.Connection, books: Codebooks) -> list[str]:
    """The problems found (empty when the store is consistent).

    Raises:
        sqlite3.DatabaseError: SQLite cannot read the file (the caller reports it).
    """
    problems: list[str] = []
    problem = db.health_problem(conn)
    if problem:
        problems.append(f"sqlite: {problem}")
    with db.transaction(conn, "DEFERRED"):
        problems += _check_codebooks(conn)
        words: dict[int, int] = {}
        for bid, cid, n, csum, codes, packed, key, dim in conn.execute(_BLOCKS):
            doc, index = bid >> db.BLOCK_BITS, bid & ((1 << db.BLOCK_BITS) - 1)
            book = books.get(cid)
            if key is None:
                problems.append(f"block {index} of document {doc}, which does not exist")
            elif book is None:
                problems.append(f"block {index} of {key[:16]} names missing codebook {cid}")
            elif block_checksum(key, index, n, dim, book.sha256, codes, packed) != csum:
                problems.append(f"checksum mismatch: block {index} of {key[:16]}")
            else:
                words[doc] = words.get(doc, 0) + n
                _check_words(problems, packed, n, key, index)
        for doc, key, n in conn.execute("SELECT id, key, n_words FROM documents"):
            if words.get(doc, 0) != n:
                problems.append(f"document {key[:16]} has {words.get(doc, 0)} of {n} words")
        _check_counters(conn, problems)
    return problems


def _check_codebooks(conn: sqlite3.Connection) -> list[str]:
    """Every stored codebook against its digest, from the bytes on disk (not a cache)."""
    out = []
    for cid, codec, dim, factory, state, digest in conn.execute(
        "SELECT id, codec, dim, factory, state, sha256 FROM codebooks"
    ):
        if Codebook.digest(codec, dim, factory, bytes(state)) != bytes(digest):
            out.append(f"codebook {cid} ({codec}, dim {dim}) fails its digest")
    return out


def _check_words(problems: list[str], packed: bytes, n: int, key: str, index: int) -> None:
    try:
        unpack(packed, n)
    except ValueError as exc:
        problems.append(f"block {index} of {key[:16]}: {exc}")


def _check_counters(conn: sqlite3.Connection, problems: list[str]) -> None:
    counters = db.read_counters(conn)
    rows = conn.execute("SELECT COUNT(*), TOTAL(n_words), TOTAL(nbytes) FROM documents").fetchone()
    for name, value in zip(db.COUNTERS, rows, strict=True):
        if counters[name] != int(value):
            problems.append(f"meta {name}={counters[name]} but rows say {int(value)}")
    orphans = conn.execute(
        "SELECT COUNT(*) FROM shingles WHERE document NOT IN (SELECT id FROM documents)"
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} shingles of documents that do not exist")
