"""A store object used in a process forked after it was opened (gunicorn ``--preload``, a
``multiprocessing`` pool started by fork).

Why: SQLite forbids using a connection in a child process (its lock bookkeeping is the
parent's), yet the child's lookups read through the inherited connection, and its ``close``
checkpointed the parent's write-ahead log through it.  A store object notices the fork by its
process id, as SQLAlchemy's pool does, and opens a read-only connection of its own (writes stay
refused: the parent's file lock cannot be taken there, :func:`~.recovery.acquire_lock`).  The
inherited connection is kept, never used nor closed in the child: closing it would run SQLite's
unlock and checkpoint code against locks only the parent holds.
"""

from __future__ import annotations

import sqlite3
import threading

from semtoken_rag.store import recovery
from semtoken_rag.store.codebooks import Codebooks

#: Connections inherited from a parent process: kept open and unused for the process's life.
_INHERITED: list[sqlite3.Connection] = []
_LOCK = threading.Lock()

File = recovery.WritableFile | recovery.ReadOnlyFile


def leave_inherited(conn: sqlite3.Connection) -> None:
    """Keep ``conn`` (the parent's) open and unused in this process."""
    with _LOCK:
        _INHERITED.append(conn)


def child_connection(
    conn: sqlite3.Connection, books: Codebooks, file: File | None
) -> tuple[sqlite3.Connection, Codebooks, File | None]:
    """``(connection, codebooks, file)`` for the child: a read-only connection of its own to
    the directory's database, or, for a store in memory (the child's own copy, no file), the
    same ones.

    Raises:
        StoreError: the database cannot be opened read-only (as a read-only store's open).
    """
    if file is None:
        return conn, books, None
    leave_inherited(conn)
    own = recovery.ReadOnlyFile(file.directory, file.timeout, False, file.spec)
    fresh, fresh_books = own.open()
    return fresh, fresh_books, own
