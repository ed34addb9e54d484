"""Row changes of the fingerprint store: inserts, LRU eviction, deletions, buffered LRU refreshes.

Functions that run inside the caller's write transaction (``BEGIN IMMEDIATE`` under both
locks, see :class:`~semtoken_rag.store.FingerprintStore`), kept apart from the store class so
each piece of the crash-safety argument is short enough to read in one screen: every change
here updates ``meta``'s counters in the same transaction as the rows it touches.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from semtoken_rag.store import db
from semtoken_rag.store.codebooks import Entry

logger = logging.getLogger(__name__)

#: ``(id, nbytes, n_words, codebook)`` of an entry row.
RowRef = tuple[int, int, int, int]


class TouchBuffer:
    """Buffered LRU refreshes: entry id -> last hit time.

    Why buffered: a lookup must never wait for a write (another process may hold the write
    lock); the refreshes ride on the next write, or on ``flush``/``close``.  LRU time is
    advisory, so losing a buffer in a crash only makes eviction slightly less accurate.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def note(self, entry_id: int, last_used: float, now: float) -> None:
        """Record a hit at ``now`` if the stored time is at least ``interval`` old."""
        if now - last_used >= self.interval:
            self._pending[entry_id] = now

    def write(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: write the pending refreshes and forget them."""
        if self._pending:
            conn.executemany(
                "UPDATE entries SET last_used = ? WHERE id = ?",
                [(t, i) for i, t in self._pending.items()],
            )
            self._pending.clear()

    def clear(self) -> None:
        """Drop the pending refreshes (a failed write: LRU time is advisory)."""
        self._pending.clear()


def insert_entries(conn: sqlite3.Connection, entries: Sequence[Entry], now: float) -> None:
    """Inside a write transaction: insert encoded entries and update the counters."""
    if not entries:
        return
    conn.executemany(
        "INSERT INTO entries(key, n_words, dim, codebook, nbytes, last_used, "
        "checksum, vectors, spans) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(e.key, e.n_words, e.dim, e.codebook, e.nbytes, now, e.checksum,
          e.vectors, e.spans) for e in entries],
    )  # fmt: skip
    per_book: dict[int, list[int]] = {}
    for e in entries:
        per_book.setdefault(e.codebook, []).append(e.n_words)
    for cid, words in per_book.items():
        db.count_codebook(conn, cid, len(words), sum(words))
    db.bump(
        conn,
        entries=len(entries),
        vectors=sum(e.n_words for e in entries),
        payload=sum(e.nbytes for e in entries),
    )


def delete_rows(conn: sqlite3.Connection, rows: list[RowRef]) -> None:
    """Inside a write transaction: delete rows and update the counters."""
    if not rows:
        return
    conn.executemany("DELETE FROM entries WHERE id = ?", [(r[0],) for r in rows])
    for _, _, n, cb in rows:
        db.count_codebook(conn, cb, -1, -n)
    db.bump(
        conn,
        entries=-len(rows),
        vectors=-sum(r[2] for r in rows),
        payload=-sum(r[1] for r in rows),
        deletions=1,
    )


def evict_lru(conn: sqlite3.Connection, max_bytes: int, touches: TouchBuffer) -> None:
    """Inside a write transaction: drop least recently used entries (oldest ``last_used``,
    then oldest id) until the payload fits ``max_bytes``; the newest entry always stays."""
    meta = db.read_meta(conn)
    total, remaining = int(meta["payload_bytes"]), int(meta["n_entries"])
    if total <= max_bytes:
        return
    touches.write(conn)  # recent hits count before choosing victims
    doomed: list[RowRef] = []
    freed = 0
    for eid, nbytes, n, cb in conn.execute(
        "SELECT id, nbytes, n_words, codebook FROM entries ORDER BY last_used, id"
    ):
        if total - freed <= max_bytes or remaining - len(doomed) <= 1:
            break
        doomed.append((eid, nbytes, n, cb))
        freed += nbytes
    delete_rows(conn, doomed)
    logger.info("evicted %d entries (%d bytes) to stay under %d", len(doomed), freed, max_bytes)


def delete_if_unchanged(conn: sqlite3.Connection, rows: list[tuple[int, bytes]]) -> None:
    """Inside a write transaction: delete ``(id, checksum)`` rows that still hold that
    checksum (a damaged row another process already replaced is left alone)."""
    refs: list[RowRef] = []
    for eid, digest in rows:
        got = conn.execute(
            "SELECT id, nbytes, n_words, codebook FROM entries WHERE id = ? AND checksum = ?",
            (eid, digest),
        ).fetchone()
        if got is not None:
            refs.append((int(got[0]), int(got[1]), int(got[2]), int(got[3])))
    delete_rows(conn, refs)
