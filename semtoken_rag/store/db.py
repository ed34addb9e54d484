"""SQLite side of the store: schema, connections, health check, meta counters, codebooks.

SQLite is the store's source of truth.  Every change of ``entries`` happens in one
``BEGIN IMMEDIATE`` transaction that also updates the counters in ``meta`` (and those of the
codebook the rows use) and draws a fresh random ``token`` naming the exact committed state
(the in-memory search index records the token it reflects).

Format 2 (this version) adds the codec: ``meta`` holds the codec's name and its JSON
description, ``codebooks`` holds each trained codec state with its digest, and every entry
names the codebook its vectors were encoded with.  Format 1 stores are refused with a message
that says to run ``semtoken-rag store migrate``; newer formats with one that says to upgrade.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from semtoken_rag.errors import StoreError
from semtoken_rag.store.codecs import CODECS, Codebook, CodecSpec

#: Version of the on-disk layout (tables, byte encoding).  A store of another version is refused.
STORE_FORMAT_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE IF NOT EXISTS codebooks (
    id INTEGER PRIMARY KEY,
    codec TEXT NOT NULL,
    dim INTEGER NOT NULL,
    factory TEXT NOT NULL,
    encoder TEXT NOT NULL,
    train_vectors INTEGER NOT NULL,
    train_cos REAL NOT NULL,
    created REAL NOT NULL,
    n_entries INTEGER NOT NULL DEFAULT 0,
    n_vectors INTEGER NOT NULL DEFAULT 0,
    sha256 BLOB NOT NULL,
    state BLOB NOT NULL,
    UNIQUE (codec, dim)
);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    n_words INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    codebook INTEGER NOT NULL,
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


def connect(
    path: Path | None, timeout: float, *, read_only: bool = False, immutable: bool = False
) -> sqlite3.Connection:
    """Open a connection: autocommit (transactions are explicit), WAL for files.

    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction across a process
    crash and keeps the database consistent across power loss (where the last transactions may
    be lost, never half-applied).  ``read_only`` opens with ``mode=ro`` (SQLite refuses every
    write); ``immutable`` additionally tells SQLite the file cannot change (no locks, no
    ``-shm``), for snapshots in directories nobody can write.
    """
    if path is None:
        target, uri = ":memory:", False
    elif read_only:
        target = path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")
        uri = True
    else:
        target, uri = str(path), False
    conn = sqlite3.connect(
        target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=uri
    )
    try:
        if not read_only:
            # Takes effect only on a new, empty database (and before WAL writes its header):
            # lets the store hand pages back to the file system after the codec's training
            # re-encodes the float16 entries (FingerprintStore.put_many).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        if path is not None and not read_only:
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


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def format_version(conn: sqlite3.Connection) -> int | None:
    """The store's format stamp, ``None`` for an empty database.

    Raises:
        DamagedStore: tables exist but the stamp is missing or unreadable.
    """
    tables = _tables(conn)
    if "meta" not in tables and "entries" not in tables:
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE name='format_version'").fetchone()
        return int(row[0]) if row is not None else _missing_stamp()
    except (sqlite3.OperationalError, ValueError, TypeError) as exc:
        raise DamagedStore(f"unreadable format stamp ({exc})") from exc


def _missing_stamp() -> int:
    raise DamagedStore("the meta table has no format_version")


def create_schema(conn: sqlite3.Connection, spec: CodecSpec) -> None:
    """Create the tables of a new (empty) format-2 store for codec ``spec``, in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if format_version(conn) is None:
            for stmt in SCHEMA.strip().split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            rows = [
                ("format_version", STORE_FORMAT_VERSION),
                ("codec", spec.name),
                ("codec_spec", spec.to_json()),
                ("token", secrets.token_hex(16)),
                *((name, 0) for name in COUNTERS),
            ]
            conn.executemany("INSERT OR IGNORE INTO meta(name, value) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def check_schema(conn: sqlite3.Connection, where: object) -> CodecSpec:
    """Check an existing store's format and return its codec.

    Raises:
        StoreError: format 1 (migrate), a newer format (upgrade), an unknown codec.
        DamagedStore: the tables or the stamp are missing or unreadable.
    """
    version = format_version(conn)
    if version is None:
        raise DamagedStore("the database has no tables")
    if version == 1:
        raise StoreError(
            f"fingerprint store {where} is in format 1 (float32 vectors, written by an older "
            f"semtoken-rag); this version reads format {STORE_FORMAT_VERSION}. Run "
            f"`semtoken-rag store migrate {where}` to re-encode it in place (crash-safe; add "
            "--codec NAME to choose the codec), or use the older semtoken-rag"
        )
    if version != STORE_FORMAT_VERSION:
        raise StoreError(
            f"fingerprint store {where} is in format {version}, written by a newer "
            f"semtoken-rag (this version reads format {STORE_FORMAT_VERSION}); upgrade "
            "semtoken-rag or use another directory"
        )
    missing = [
        n
        for n in (*COUNTERS, "token", "codec", "codec_spec")
        if conn.execute("SELECT 1 FROM meta WHERE name=?", (n,)).fetchone() is None
    ]
    absent = {"entries", "codebooks"} - _tables(conn)
    if missing or absent:
        raise DamagedStore(f"the store's tables are incomplete (missing {missing or absent})")
    name = str(conn.execute("SELECT value FROM meta WHERE name='codec'").fetchone()[0])
    text = str(conn.execute("SELECT value FROM meta WHERE name='codec_spec'").fetchone()[0])
    if name not in CODECS:
        raise StoreError(
            f"fingerprint store {where} uses codec {name!r}, unknown to this semtoken-rag "
            f"(known: {', '.join(CODECS)}); upgrade semtoken-rag, or migrate the store with "
            "the version that wrote it (`semtoken-rag store migrate DIR --codec pq64`)"
        )
    spec = CodecSpec.from_json(text)
    if spec.name != name:
        raise DamagedStore(f"codec name {name!r} disagrees with its description")
    return spec


def reclaim_free_pages(conn: sqlite3.Connection) -> None:
    """Return the free pages to the file system (stores created with ``auto_vacuum``; a no-op
    for others).  Its own transaction: call outside one, under the store's write lock.

    ``executescript`` because Python's ``execute`` steps the pragma once (one page).
    """
    conn.executescript("PRAGMA incremental_vacuum;")


#: Values per ``IN (...)`` query (SQLite's variable limit is at least 999).
SQL_BATCH = 500


def select_entries_in(
    conn: sqlite3.Connection, columns: str, column: str, values: Sequence[object]
) -> Iterator[tuple[Any, ...]]:
    """Rows ``SELECT columns FROM entries WHERE column IN values``, queried :data:`SQL_BATCH`
    values at a time (a long list would exceed SQLite's variable limit)."""
    for lo in range(0, len(values), SQL_BATCH):
        part = list(values[lo : lo + SQL_BATCH])
        marks = ",".join("?" * len(part))
        yield from conn.execute(f"SELECT {columns} FROM entries WHERE {column} IN ({marks})", part)


def staged_entries(conn: sqlite3.Connection, codec: str) -> int:
    """Entries still encoded with another codec's codebook (float16 staging before training)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(n_entries), 0) FROM codebooks WHERE codec != ?", (codec,)
    ).fetchone()
    return int(row[0])


def read_meta(conn: sqlite3.Connection) -> dict[str, int | str]:
    """Meta values: counters and the format as int, token and codec as str."""
    out: dict[str, int | str] = {}
    for name, value in conn.execute("SELECT name, value FROM meta"):
        out[name] = int(value) if name in (*COUNTERS, "format_version") else str(value)
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


def count_codebook(
    conn: sqlite3.Connection,
    codebook: int,
    entries: int,
    vectors: int,
    table: str = "codebooks",
) -> None:
    """Inside a write transaction: rows encoded with ``codebook`` changed by these deltas."""
    conn.execute(
        f"UPDATE {table} SET n_entries = n_entries + ?, n_vectors = n_vectors + ? WHERE id = ?",
        (entries, vectors, codebook),
    )


_CODEBOOK_COLUMNS = "id, codec, dim, factory, state, sha256, encoder, train_vectors, train_cos"


def load_codebooks(conn: sqlite3.Connection, table: str = "codebooks") -> dict[int, Codebook]:
    """Every codebook of the store (checksums are checked by the caller before use)."""
    return {
        int(row[0]): Codebook(
            id=int(row[0]),
            codec=str(row[1]),
            dim=int(row[2]),
            factory=str(row[3]),
            state=bytes(row[4]),
            sha256=bytes(row[5]),
            encoder=str(row[6]),
            train_vectors=int(row[7]),
            train_cos=float(row[8]),
        )
        for row in conn.execute(f"SELECT {_CODEBOOK_COLUMNS} FROM {table}")
    }


def insert_codebook(
    conn: sqlite3.Connection,
    *,
    codec: str,
    dim: int,
    factory: str,
    state: bytes,
    sha256: bytes,
    encoder: str = "",
    train_vectors: int = 0,
    train_cos: float = 1.0,
    table: str = "codebooks",
) -> int:
    """Inside a write transaction: add a codebook; returns its id."""
    cur = conn.execute(
        f"INSERT INTO {table}(codec, dim, factory, encoder, train_vectors, train_cos, created, "
        "sha256, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (codec, dim, factory, encoder, train_vectors, train_cos, time.time(), sha256, state),
    )
    return int(cur.lastrowid or 0)
