"""What the store reports: its errors and warnings, ``stats()`` and ``verify()``.

``verify()`` reads every block once in one snapshot (``quick_check``, codebook digests, block
checksums and words, documents' blocks, the trigger-kept counters) and changes nothing.
"""

from __future__ import annotations

import logging
import numbers
import sqlite3
import warnings
from dataclasses import dataclass
from typing import NoReturn

from semtoken_rag.errors import StoreError
from semtoken_rag.store import db
from semtoken_rag.store.codebooks import Codebook, Codebooks, DamagedCodebook
from semtoken_rag.store.codecs import STAGING
from semtoken_rag.store.encoding import block_checksum
from semtoken_rag.store.words import unpack

logger = logging.getLogger("semtoken_rag.store")


class StoreWarning(UserWarning):
    """Something in the store was damaged (repaired, or left alone in a read-only store)."""


class StoreDamagedError(StoreError):
    """The store is damaged and may not be repaired here (read-only, an inspection, or a
    writable store's ``codec_set`` meeting a damaged codebook: only an open quarantines)."""


@dataclass(frozen=True)
class StoreStats:
    """A snapshot of the store.

    Attributes:
        hits: Chunks served by this process's lookups.
        misses: Chunks not found (or found damaged) by this process's lookups.
        documents: Documents stored (all processes).
        words: Word vectors stored.
        payload_bytes: Bytes of codes and words (what ``max_bytes`` limits).
        bytes_on_disk: Database and write-ahead-log files (0 in memory; ``close`` merges them).
        codec: The store's codec.
        trained: Whether the codec's codebook exists (always true for raw codecs).
        staged_words: Words kept in float16 (before training, or not fitting the codebook).
    """

    hits: int
    misses: int
    documents: int
    words: int
    payload_bytes: int
    bytes_on_disk: int
    codec: str = ""
    trained: bool = True
    staged_words: int = 0


class CodebookChangedError(StoreError):
    """Encoded documents name a codebook the store does not hold (or holds with another
    digest): the store's codec changed under a running ingestion.  Nothing was written."""


def warn_damage(message: str) -> None:
    """Log and warn (as :class:`StoreWarning`) about damage found: repaired, or handled with a
    documented safe result (misses, nothing stored) where it could not be repaired here."""
    logger.warning(message)
    warnings.warn(message, StoreWarning, stacklevel=4)


def check_max_bytes(max_bytes: object) -> int | None:
    """``None`` or a positive integer (never a float, NaN or bool: eviction compares it).

    Raises:
        StoreError: naming the value.
    """
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 1:
        raise StoreError(f"max_bytes must be a positive integer or None, got {max_bytes!r}")
    return int(max_bytes)


def sqlite_failed(exc: sqlite3.DatabaseError, op: str, damage: str) -> None:
    """A read or write SQLite refused: damage is a warning and a documented safe result
    (``damage``); anything else (busy, disk full, permissions) a :class:`StoreError`."""
    if not db.is_damage(exc):
        raise StoreError(f"fingerprint store {op} failed: {exc}") from exc
    warn_damage(f"{damage}. Reopen it with verify_on_open=True to quarantine and repair it")


def write_failed(exc: sqlite3.DatabaseError | DamagedCodebook, where: str, lost: str) -> None:
    """A write that met damage (SQLite's, or a codebook failing its digest): a warning and the
    documented safe result (``lost`` says what was not written); anything else a
    :class:`StoreError` (see :func:`sqlite_failed`)."""
    if isinstance(exc, sqlite3.DatabaseError):
        sqlite_failed(exc, "write", f"fingerprint store {where} is damaged ({exc}); {lost}")
    else:
        warn_damage(
            f"a codebook of {where} is damaged ({exc}); {lost}. Reopen it to quarantine and "
            "repair it"
        )


def removal_failed(exc: sqlite3.DatabaseError, where: str) -> None:
    """A lookup's removal of the damaged documents it met failed: damage beyond them is a
    warning (:func:`write_failed`), anything else (full disk, I/O) only logged, as a clean-up
    must not fail the lookup (they are misses either way; a later lookup removes them)."""
    if db.is_damage(exc):
        write_failed(exc, where, "the damaged documents stay in place")
    else:
        logger.warning(
            "fingerprint store %s: damaged documents left for a later lookup (%s)", where, exc
        )


def codec_set_failed(exc: sqlite3.DatabaseError | DamagedCodebook, where: str) -> NoReturn:
    """``codec_set`` has no safe result to return: damage is a :class:`StoreDamagedError` (only
    a writable open repairs it), anything else a :class:`StoreError`."""
    if isinstance(exc, sqlite3.DatabaseError) and not db.is_damage(exc):
        raise StoreError(f"fingerprint store write failed: {exc}") from exc
    raise StoreDamagedError(
        f"fingerprint store {where} is damaged ({exc}); reopen it writable to move the damaged "
        "files to a quarantine folder and start an empty store"
    ) from exc


_BLOCKS = (
    f"SELECT b.id, b.codebook, b.n_words, b.checksum, b.codes, b.words, d.key, d.dim "
    f"FROM blocks b LEFT JOIN documents d ON d.id = b.id >> {db.BLOCK_BITS} ORDER BY b.id"
)


def collect_stats(
    conn: sqlite3.Connection, books: Codebooks, hits: int, misses: int, size: int
) -> StoreStats:
    """The store's counters (kept by its triggers) and this process's hits and misses."""
    counts = db.read_counters(conn)
    staged, trained = 0, True
    if books.spec.trained:  # from the database: another store object may have trained it
        sql = "SELECT COALESCE(SUM(n_words), 0) FROM codebooks WHERE codec = ?"
        staged = int(conn.execute(sql, (STAGING.name,)).fetchone()[0])
        sql = "SELECT 1 FROM codebooks WHERE codec = ? LIMIT 1"
        trained = conn.execute(sql, (books.spec.name,)).fetchone() is not None
    return StoreStats(
        hits=hits,
        misses=misses,
        documents=counts["documents"],
        words=counts["words"],
        payload_bytes=counts["payload_bytes"],
        bytes_on_disk=size,
        codec=books.spec.name,
        trained=trained,
        staged_words=staged,
    )


def verify_database(conn: sqlite3.Connection) -> list[str]:
    """The problems found (empty when consistent), read from the file, not a store object's
    cache (another process may have trained a codebook since it loaded).

    Raises:
        sqlite3.DatabaseError: SQLite cannot read the file (the caller reports it).
    """
    problems = [f"sqlite: {p}" for p in [db.health_problem(conn)] if p]
    with db.transaction(conn, "DEFERRED"):
        digests = _check_codebooks(conn, problems)
        words: dict[int, int] = {}
        for bid, cid, n, csum, codes, packed, key, dim in conn.execute(_BLOCKS):
            doc, index = bid >> db.BLOCK_BITS, bid & ((1 << db.BLOCK_BITS) - 1)
            digest = digests.get(cid)
            if key is None:
                problems.append(f"block {index} of document {doc}, which does not exist")
            elif digest is None:
                problems.append(f"block {index} of {key[:16]} names missing codebook {cid}")
            elif block_checksum(key, index, n, dim, digest, codes, packed) != csum:
                problems.append(f"checksum mismatch: block {index} of {key[:16]}")
            else:
                words[doc] = words.get(doc, 0) + n
                try:
                    unpack(packed, n)
                except ValueError as exc:
                    problems.append(f"block {index} of {key[:16]}: {exc}")
        for doc, key, n in conn.execute("SELECT id, key, n_words FROM documents"):
            if words.get(doc, 0) != n:
                problems.append(f"document {key[:16]} has {words.get(doc, 0)} of {n} words")
        _check_counters(conn, problems)
    return problems


def _check_codebooks(conn: sqlite3.Connection, problems: list[str]) -> dict[int, bytes]:
    """Every stored codebook against its digest, from the bytes on disk (not a cache); returns
    the digests by codebook id (what block checksums include)."""
    digests = {}
    for cid, codec, dim, factory, state, digest in conn.execute(
        "SELECT id, codec, dim, factory, state, sha256 FROM codebooks"
    ):
        digests[int(cid)] = bytes(digest)
        if Codebook.digest(codec, dim, factory, bytes(state)) != bytes(digest):
            problems.append(f"codebook {cid} ({codec}, dim {dim}) fails its digest")
    return digests


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
