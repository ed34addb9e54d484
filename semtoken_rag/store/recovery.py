"""Opening a store directory: health checks, quarantine of damaged files, fresh start.

Called with the cross-process lock held, so no other process writes while files are checked
or moved.  Damaged files are never deleted: they go to ``<dir>/quarantine-<timestamp>/``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from semtoken_rag.errors import StoreError
from semtoken_rag.store import db
from semtoken_rag.store.fsutil import quarantine
from semtoken_rag.store.index import DamagedIndex, read_index_file
from semtoken_rag.store.types import warn_repaired

DB_NAME = "fingerprints.sqlite3"
INDEX_NAME = "vectors.faiss"
LOCK_NAME = ".lock"
DB_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm")


def open_database(directory: Path, timeout: float, verify: bool) -> sqlite3.Connection:
    """A healthy connection to the store's database, quarantining a damaged one first.

    Raises:
        StoreError: the database is of another format version, or cannot be opened for a
            reason that is not damage (permissions, locked): those must not be "repaired".
    """
    path = directory / DB_NAME
    try:
        conn = db.connect(path, timeout)
    except sqlite3.DatabaseError as exc:
        if not db.is_damage(exc):
            raise StoreError(f"cannot open {path}: {exc}") from exc
        return _start_over(directory, None, str(exc), timeout)
    try:
        problem = db.health_problem(conn) if verify else None
        if problem is None:
            db.init_schema(conn)
            return conn
    except db.DamagedStore as exc:
        problem = str(exc)
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if not db.is_damage(exc):
            conn.close()
            raise StoreError(f"cannot open {path}: {exc}") from exc
        problem = str(exc)
    return _start_over(directory, conn, problem, timeout)


def _start_over(
    directory: Path, conn: sqlite3.Connection | None, problem: str, timeout: float
) -> sqlite3.Connection:
    if conn is not None:
        conn.close()
    where = quarantine(directory, (*DB_FILES, INDEX_NAME))
    warn_repaired(
        f"fingerprint store {directory} is damaged ({problem}); its files were moved to "
        f"{where} and an empty store was started (fingerprints will be recomputed)"
    )
    conn = db.connect(directory / DB_NAME, timeout)
    db.init_schema(conn)
    return conn


def verify_index_file(directory: Path) -> None:
    """Quarantine the index file if it is truncated or garbage (it is rebuilt on demand)."""
    f = directory / INDEX_NAME
    if not f.exists():
        return
    try:
        read_index_file(f, deserialize=False)
    except (DamagedIndex, OSError) as exc:
        quarantine_index(directory, str(exc))


def quarantine_index(directory: Path, problem: str) -> None:
    """Move a damaged index file aside, with a warning."""
    where = quarantine(directory, (INDEX_NAME,))
    warn_repaired(
        f"search index of {directory} is damaged ({problem}); moved to {where}, it will be "
        "rebuilt from the database"
    )
