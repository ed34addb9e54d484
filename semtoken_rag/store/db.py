"""SQLite side of the store: schema, connection settings, health check, meta counters.

SQLite is the store's source of truth.  Every change of ``entries`` happens in one
``BEGIN IMMEDIATE`` transaction that also updates the counters in ``meta`` and draws a fresh
random ``token``; the token names the exact committed state, and the FAISS index file records
the token it was built from (see :mod:`semtoken_rag.store.index`).
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from semtoken_rag.errors import StoreError

#: Version of the on-disk layout (tables, byte encoding).  A store of another version is refused.
STORE_FORMAT_VERSION = 1

SCHEMA = """
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

#: Counters kept in ``meta`` (updated in the same transaction as the rows they count).
COUNTERS = ("generation", "deletions", "n_entries", "n_vectors", "payload_bytes")

#: SQLite result codes meaning "the file is damaged" (as opposed to busy/locked/permissions).
_DAMAGE_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


class DamagedStore(Exception):
    """Internal: the database is unreadable or fails its health check (caller quarantines)."""


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """True when ``exc`` says the file is corrupt rather than busy, locked or not writable."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _DAMAGE_CODES
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg


def connect(path: Path | None, timeout: float) -> sqlite3.Connection:
    """Open a connection: autocommit (transactions are explicit), WAL for files.

    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction across a process
    crash and keeps the database consistent across power loss (where the last transactions may
    be lost, never half-applied).
    """
    conn = sqlite3.connect(
        ":memory:" if path is None else str(path),
        timeout=timeout,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        if path is not None:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot put {path} in WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    except BaseException:
        conn.close()
        raise
    return conn


def health_problem(conn: sqlite3.Connection) -> str | None:
    """``PRAGMA quick_check`` (O(size), reads every page once); ``None`` when healthy."""
    rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if rows == ["ok"]:
        return None
    return "; ".join(str(r) for r in rows[:5])


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the tables of a new store, or check an existing one.

    Raises:
        StoreError: the store was written in another format version.
        DamagedStore: the tables exist but the format stamp is missing.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables and "entries" not in tables:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in SCHEMA.strip().split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('format_version', ?)",
                (STORE_FORMAT_VERSION,),
            )
            for name in COUNTERS:
                conn.execute("INSERT OR IGNORE INTO meta(name, value) VALUES (?, 0)", (name,))
            conn.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('token', ?)",
                (secrets.token_hex(16),),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    row = conn.execute("SELECT value FROM meta WHERE name='format_version'").fetchone()
    if row is None:
        raise DamagedStore("the meta table has no format_version")
    if int(row[0]) != STORE_FORMAT_VERSION:
        raise StoreError(
            f"fingerprint store format version {row[0]} is not supported by this version of "
            f"semtoken-rag (expects {STORE_FORMAT_VERSION}); use a new directory or the "
            "matching semtoken-rag version"
        )
    missing = [
        n
        for n in (*COUNTERS, "token")
        if conn.execute("SELECT 1 FROM meta WHERE name=?", (n,)).fetchone() is None
    ]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if missing or "entries" not in tables:
        raise DamagedStore(f"the store's tables are incomplete (missing {missing or 'entries'})")


def read_meta(conn: sqlite3.Connection) -> dict[str, int | str]:
    """All meta values (counters as int, token as str)."""
    out: dict[str, int | str] = {}
    for name, value in conn.execute("SELECT name, value FROM meta"):
        out[name] = value if name == "token" else int(value)
    return out


def bump(
    conn: sqlite3.Connection,
    *,
    entries: int = 0,
    vectors: int = 0,
    payload: int = 0,
    deletions: int = 0,
) -> None:
    """Record a change inside the caller's write transaction: counters and a fresh token."""
    for name, delta in (
        ("n_entries", entries),
        ("n_vectors", vectors),
        ("payload_bytes", payload),
        ("deletions", deletions),
        ("generation", 1),
    ):
        if delta:
            conn.execute("UPDATE meta SET value = value + ? WHERE name = ?", (delta, name))
    conn.execute("UPDATE meta SET value = ? WHERE name = 'token'", (secrets.token_hex(16),))
