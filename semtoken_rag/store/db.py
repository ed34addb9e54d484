"""SQLite side of the store: schema, connections, format checks, the one transaction helper.

A document is a ``documents`` row, its words and vectors in ``blocks`` of :data:`BLOCK_WORDS`
words (row id ``document << 20 | block``: one range of the table's own key), its winnowed
``shingles`` and its ``names``.  Triggers keep the counters and delete a document's rows with
it, so no Python code maintains a counter and none can drift.  Formats 1 and 2 (keyed by chunk
text) are refused with a message to re-ingest.  See docs/store.md, "On-disk layout".
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from semtoken_rag.errors import StoreError
from semtoken_rag.store.codecs import CODECS, CodecSpec

logger = logging.getLogger(__name__)

#: Version of the on-disk layout (tables, byte encoding).  A store of another version is refused.
STORE_FORMAT_VERSION = 3
#: Words per block: a lookup reads and verifies only the blocks a chunk covers.
BLOCK_WORDS = 128
#: Bits of a block row id that number the block inside its document.
BLOCK_BITS = 20
#: Largest document, in words (blocks per document fit :data:`BLOCK_BITS`).
MAX_DOCUMENT_WORDS = BLOCK_WORDS << BLOCK_BITS

SCHEMA = f"""
CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE codebooks (
    id INTEGER PRIMARY KEY, codec TEXT NOT NULL, dim INTEGER NOT NULL, factory TEXT NOT NULL,
    encoder TEXT NOT NULL, train_vectors INTEGER NOT NULL, train_cos REAL NOT NULL,
    created REAL NOT NULL, n_words INTEGER NOT NULL DEFAULT 0, sha256 BLOB NOT NULL,
    state BLOB NOT NULL, UNIQUE (codec, dim));
CREATE TABLE encoders (id INTEGER PRIMARY KEY, cache_id TEXT NOT NULL UNIQUE);
CREATE TABLE documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, encoder INTEGER NOT NULL,
    n_words INTEGER NOT NULL, dim INTEGER NOT NULL, nbytes INTEGER NOT NULL,
    last_used REAL NOT NULL);
CREATE INDEX documents_lru ON documents(last_used, id);
CREATE TABLE blocks (
    id INTEGER PRIMARY KEY, start INTEGER NOT NULL, codebook INTEGER NOT NULL,
    n_words INTEGER NOT NULL, checksum BLOB NOT NULL, codes BLOB NOT NULL, words BLOB NOT NULL);
CREATE TABLE shingles (
    hash INTEGER NOT NULL, document INTEGER NOT NULL, word INTEGER NOT NULL,
    PRIMARY KEY (hash, document, word)) WITHOUT ROWID;
CREATE INDEX shingles_document ON shingles(document);
CREATE TABLE names (
    name TEXT NOT NULL, document INTEGER NOT NULL, PRIMARY KEY (name, document)) WITHOUT ROWID;
CREATE INDEX names_document ON names(document);
CREATE TRIGGER documents_added AFTER INSERT ON documents BEGIN
    UPDATE meta SET value = value + 1 WHERE name = 'documents';
    UPDATE meta SET value = value + NEW.n_words WHERE name = 'words';
    UPDATE meta SET value = value + NEW.nbytes WHERE name = 'payload_bytes';
END;
CREATE TRIGGER documents_resized AFTER UPDATE OF nbytes ON documents BEGIN
    UPDATE meta SET value = value + NEW.nbytes - OLD.nbytes WHERE name = 'payload_bytes';
END;
CREATE TRIGGER documents_removed AFTER DELETE ON documents BEGIN
    UPDATE meta SET value = value - 1 WHERE name = 'documents';
    UPDATE meta SET value = value - OLD.n_words WHERE name = 'words';
    UPDATE meta SET value = value - OLD.nbytes WHERE name = 'payload_bytes';
    DELETE FROM blocks WHERE id BETWEEN OLD.id << {BLOCK_BITS}
        AND (OLD.id << {BLOCK_BITS}) + {(1 << BLOCK_BITS) - 1};
    DELETE FROM shingles WHERE document = OLD.id;
    DELETE FROM names WHERE document = OLD.id;
END;
CREATE TRIGGER blocks_added AFTER INSERT ON blocks BEGIN
    UPDATE codebooks SET n_words = n_words + NEW.n_words WHERE id = NEW.codebook;
END;
CREATE TRIGGER blocks_recoded AFTER UPDATE OF codebook ON blocks BEGIN
    UPDATE codebooks SET n_words = n_words - OLD.n_words WHERE id = OLD.codebook;
    UPDATE codebooks SET n_words = n_words + NEW.n_words WHERE id = NEW.codebook;
END;
CREATE TRIGGER blocks_removed AFTER DELETE ON blocks BEGIN
    UPDATE codebooks SET n_words = n_words - OLD.n_words WHERE id = OLD.codebook;
END;
"""

#: Counters in ``meta``, kept by the triggers above.
COUNTERS = ("documents", "words", "payload_bytes")

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
    """Open a connection (autocommit: transactions are explicit) writing nothing, so a store of
    another format is refused untouched (a writer then calls :func:`configure_writer`).

    ``read_only`` opens with ``mode=ro``; ``immutable`` also tells SQLite the file cannot
    change (no locks, no ``-shm``), for snapshots nobody can write.
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
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    # 64 MiB page cache (default 2 MiB): the shingle index is read and written at random
    # places (docs/store.md, "Ingestion throughput").
    conn.execute("PRAGMA cache_size=-65536")
    return conn


def configure_writer(conn: sqlite3.Connection, path: Path | None, *, new: bool) -> None:
    """WAL with ``synchronous=NORMAL`` (a committed transaction survives a process crash; power
    loss may lose the last ones, never half-apply one) and, for a new database,
    ``auto_vacuum=INCREMENTAL`` (pages freed by eviction or training go back to the file system).

    Raises:
        StoreError: the file cannot be put in WAL mode.
    """
    if new:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # before the first table is created
    if path is not None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put {path} in WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint every ~40 MB of log instead of ~4 MB: fewer rewrites of hot pages.
        conn.execute("PRAGMA wal_autocheckpoint=10000")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
    """``BEGIN <mode>`` ... ``COMMIT``, rolled back on any error (a failed ``COMMIT`` too: an
    open transaction fails every later ``BEGIN``); a failed rollback never hides the first error.

    ``IMMEDIATE`` takes SQLite's write lock at once (writers); ``DEFERRED`` is a read snapshot
    (a lookup sees one committed state across its several queries).
    """
    conn.execute(f"BEGIN {mode}")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def health_problem(conn: sqlite3.Connection) -> str | None:
    """``PRAGMA quick_check`` (O(size), reads every page once); ``None`` when healthy."""
    rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    return None if rows == ["ok"] else "; ".join(str(r) for r in rows[:5])


#: ``verify_on_open=None`` runs ``PRAGMA quick_check`` only below this database size.
VERIFY_MAX_BYTES = 1 << 30


def verify_default(db_file: Path, verify_on_open: bool | None) -> bool:
    """Whether to run ``PRAGMA quick_check`` on open: as asked, else only for databases up to
    :data:`VERIFY_MAX_BYTES` (it reads the whole file; rows are checksummed on every read)."""
    if verify_on_open is not None:
        return verify_on_open
    try:
        size = db_file.stat().st_size
    except OSError:
        return True
    if size > VERIFY_MAX_BYTES:
        gib, why = size / 2**30, "rows are checksummed on every read; verify_on_open=True forces it"
        logger.info(
            "store %s is %.1f GiB: quick_check skipped on open (%s)", db_file.parent, gib, why
        )
    return size <= VERIFY_MAX_BYTES


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def format_version(conn: sqlite3.Connection) -> int | None:
    """The store's format stamp, ``None`` for an empty database.

    Raises:
        DamagedStore: tables exist but the stamp is missing or unreadable.
    """
    if not _tables(conn) & {"meta", "entries", "documents"}:
        return None
    try:
        row = conn.execute("SELECT value FROM meta WHERE name='format_version'").fetchone()
        if row is None:
            raise DamagedStore("the meta table has no format_version")
        return int(row[0])
    except (sqlite3.OperationalError, ValueError, TypeError) as exc:
        raise DamagedStore(f"unreadable format stamp ({exc})") from exc


def create_schema(conn: sqlite3.Connection, spec: CodecSpec) -> None:
    """Create the tables of a new (empty) store for codec ``spec``, in one transaction."""
    with transaction(conn):
        if format_version(conn) is not None:
            return
        for stmt in _statements(SCHEMA):
            conn.execute(stmt)
        rows = [
            ("format_version", STORE_FORMAT_VERSION),
            ("codec", spec.name),
            ("codec_spec", spec.to_json()),
            *((name, 0) for name in COUNTERS),
        ]
        conn.executemany("INSERT INTO meta(name, value) VALUES (?, ?)", rows)


def _statements(script: str) -> Iterator[str]:
    """The complete SQL statements of ``script`` (trigger bodies hold semicolons, so lines are
    joined until :func:`sqlite3.complete_statement` says a statement is complete)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""


def check_schema(conn: sqlite3.Connection, where: object) -> CodecSpec:
    """Check an existing store's format and return its codec.

    Raises:
        StoreError: an older format (re-ingest), a newer one (upgrade), an unknown codec.
        DamagedStore: the tables or the stamp are missing or unreadable.
    """
    version = format_version(conn)
    if version is None:
        raise DamagedStore("the database has no tables")
    if version < STORE_FORMAT_VERSION:
        raise StoreError(
            f"fingerprint store {where} is in format {version}, written by an older "
            "semtoken-rag that keyed fingerprints by exact chunk text; this version stores "
            f"whole documents (format {STORE_FORMAT_VERSION}) and cannot read it. Re-ingest "
            "your documents into a new directory (`semtoken-rag ingest DOCS --store NEW_DIR`); "
            "the old store is left as it is"
        )
    if version != STORE_FORMAT_VERSION:
        raise StoreError(
            f"fingerprint store {where} is in format {version}, written by a newer "
            f"semtoken-rag (this version reads format {STORE_FORMAT_VERSION}); upgrade "
            "semtoken-rag or use another directory"
        )
    meta = {name: value for name, value in conn.execute("SELECT name, value FROM meta")}
    missing = [n for n in (*COUNTERS, "codec", "codec_spec") if n not in meta]
    absent = {"documents", "blocks", "shingles", "names", "codebooks", "encoders"} - _tables(conn)
    if missing or absent:
        raise DamagedStore(f"the store's tables are incomplete (missing {missing or absent})")
    name = str(meta["codec"])
    if name not in CODECS:
        raise StoreError(
            f"fingerprint store {where} uses codec {name!r}, unknown to this semtoken-rag "
            f"(known: {', '.join(CODECS)}); upgrade semtoken-rag or use another directory"
        )
    spec = CodecSpec.from_json(str(meta["codec_spec"]))
    if spec.name != name:
        raise DamagedStore(f"codec name {name!r} disagrees with its description")
    return spec


def read_counters(conn: sqlite3.Connection) -> dict[str, int]:
    """The trigger-kept counters of ``meta``."""
    rows = select_in(conn, "SELECT name, value FROM meta WHERE name IN ({})", COUNTERS)
    return {str(name): int(value) for name, value in rows}


#: Values per ``IN (...)`` query (SQLite's variable limit is at least 999).
SQL_BATCH = 500


def select_in(
    conn: sqlite3.Connection, query: str, values: Sequence[Any]
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``query`` (with one ``IN ({})`` placeholder) for ``values``, queried
    :data:`SQL_BATCH` values at a time (a long list would exceed SQLite's variable limit)."""
    for lo in range(0, len(values), SQL_BATCH):
        part = list(values[lo : lo + SQL_BATCH])
        yield from conn.execute(query.format(",".join("?" * len(part))), part)


def block_range(document: int) -> tuple[int, int]:
    """Inclusive row-id range of a document's blocks."""
    return document << BLOCK_BITS, (document << BLOCK_BITS) + (1 << BLOCK_BITS) - 1
