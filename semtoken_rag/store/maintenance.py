"""Row changes of the store besides inserts: LRU eviction, removal of damage, LRU refreshes.

Functions that run inside the caller's write transaction (``BEGIN IMMEDIATE`` under both
locks, see :class:`~semtoken_rag.store.FingerprintStore`).  Deleting a ``documents`` row is all
they do: the database's triggers delete its blocks, shingles and names and update the counters
in the same statement (:mod:`semtoken_rag.store.db`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable

logger = logging.getLogger(__name__)


class TouchBuffer:
    """Buffered LRU refreshes: document id -> last hit time.

    Why buffered: a lookup must never wait for a write (another process may hold the write
    lock); the refreshes ride on the next write, or on ``flush``/``close``.  LRU time is
    advisory, so losing a buffer in a crash only makes eviction slightly less accurate.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def note(self, document: int, last_used: float, now: float) -> None:
        """Record a hit at ``now`` if the stored time is at least ``interval`` old."""
        if now - last_used >= self.interval:
            self._pending[document] = now

    def write(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: write the pending refreshes and forget them."""
        if self._pending:
            conn.executemany(
                "UPDATE documents SET last_used = ? WHERE id = ?",
                [(t, i) for i, t in self._pending.items()],
            )
            self._pending.clear()

    def clear(self) -> None:
        """Drop the pending refreshes (a failed write: LRU time is advisory)."""
        self._pending.clear()


def evict_lru(conn: sqlite3.Connection, max_bytes: int, touches: TouchBuffer) -> int:
    """Inside a write transaction: delete least recently used documents (oldest ``last_used``,
    then oldest id) until the payload fits ``max_bytes``; the newest document always stays.

    Returns:
        Documents evicted.
    """
    total = int(conn.execute("SELECT value FROM meta WHERE name = 'payload_bytes'").fetchone()[0])
    if total <= max_bytes:
        return 0
    touches.write(conn)  # recent hits count before choosing victims
    remaining = int(conn.execute("SELECT value FROM meta WHERE name = 'documents'").fetchone()[0])
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


def delete_documents(conn: sqlite3.Connection, docs: Iterable[tuple[int, str]]) -> None:
    """Inside a write transaction: delete ``(id, key)`` documents that still hold that key
    (a damaged document another process already replaced is left alone)."""
    conn.executemany("DELETE FROM documents WHERE id = ? AND key = ?", list(docs))
