"""``semtoken-rag store migrate``: re-encode a store in place (format 1 -> 2, or another codec).

Crash-safe by construction, inside the one SQLite database (no file is renamed while SQLite
could have it open, so its WAL can never be applied to the wrong file):

1. The new tables (``migrate_entries``, ``migrate_codebooks``) are filled beside the old ones
   in batches, one transaction each; ``migrate_state`` records the target codec.  The old
   tables and the format stamp are untouched, so a kill leaves the old store exactly as it
   was (plus half-filled new tables): rerunning the migration resumes after the last
   committed batch.
2. One final transaction drops the old tables, renames the new ones, recounts ``meta`` and
   stamps format 2 with the new codec.  SQLite's WAL makes it atomic: after a kill the store
   is either entirely old or entirely new.
3. ``VACUUM`` then returns the old tables' pages to the file system (itself atomic), and the
   format-1 index file ``vectors.faiss`` (a derived cache) is removed.

The cross-process lock is held throughout, so no writer (of this or of an older version: both
use ``<dir>/.lock``) changes the store meanwhile.  Readers should be stopped: format-1 readers
would not understand the result anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semtoken_rag.errors import StoreError
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.store import db
from semtoken_rag.store.codebooks import ROW_COLUMNS, Codebooks, DamagedCodebook, Entry
from semtoken_rag.store.codecs import (
    CodecSpec,
    get_codec,
    train,
    training_rows,
    training_sample,
)
from semtoken_rag.store.fsutil import acquire_lock, files_size
from semtoken_rag.store.legacy import V1_INDEX_NAME, read_v1_row
from semtoken_rag.store.recovery import DB_NAME, LOCK_NAME

logger = logging.getLogger(__name__)

_NEW = ("migrate_codebooks", "migrate_entries")
_V1_COLUMNS = "id, key, n_words, dim, checksum, vectors, spans, last_used"


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` did.

    Attributes:
        source_format: Format of the store before (1 or 2).
        source_codec: Its codec (``float32`` for format 1).
        codec: The codec after.
        entries: Entries in the migrated store.
        damaged: Source rows that failed their checksum (not migrated; they would be misses).
        resumed: Whether an interrupted migration was continued.
        bytes_before: Database bytes on disk before.
        bytes_after: After (VACUUM included).
        seconds: Wall time.
    """

    source_format: int
    source_codec: str
    codec: str
    entries: int
    damaged: int
    resumed: bool
    bytes_before: int
    bytes_after: int
    seconds: float


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def migrate(
    directory: str | Path,
    codec: str | CodecSpec | None = None,
    *,
    batch_rows: int = 256,
    lock_timeout: float = 600.0,
    vacuum: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Re-encode the store in ``directory`` with ``codec`` (default: ``pq64`` for a format-1
    store, the store's own codec otherwise), in place and crash-safely (module docstring).

    Args:
        directory: Store directory.
        codec: Target codec name or spec.
        batch_rows: Entries per transaction.
        lock_timeout: Seconds to wait for the store's lock.
        vacuum: Return the old pages to the file system at the end.
        on_progress: Called with ``(entries done, entries total)`` after every batch.

    Raises:
        StoreError: no store there, a damaged database (open it to quarantine), a format
            newer than this version, or an unknown codec.
    """
    from filelock import FileLock

    t0 = time.perf_counter()
    path = Path(directory)
    if not (path / DB_NAME).is_file():
        raise StoreError(f"no fingerprint store at {path} (missing {DB_NAME})")
    lock = FileLock(str(path / LOCK_NAME), timeout=lock_timeout)
    acquire_lock(lock, path, "migrating needs write access to the store directory")
    try:
        before = files_size(path, (DB_NAME, DB_NAME + "-wal"))
        conn: sqlite3.Connection | None = None
        try:
            conn = db.connect(path / DB_NAME, lock_timeout)
            report = _migrate(conn, path, codec, batch_rows, on_progress)
            if vacuum and report is not None:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            if db.is_damage(exc):
                raise StoreError(
                    f"fingerprint store {path} is damaged ({exc}); nothing was migrated. Open "
                    "it with FingerprintStore(path, verify_on_open=True) to quarantine it"
                ) from exc
            raise StoreError(f"migration of {path} failed: {exc}") from exc
        finally:
            if conn is not None:
                conn.close()
        if report is None:
            stored = _codec_of(path, lock_timeout)
            return MigrationReport(2, stored, stored, -1, 0, False, before, before, 0.0)
        with contextlib.suppress(OSError):
            (path / V1_INDEX_NAME).unlink()
        return dataclasses.replace(
            report,
            bytes_before=before,
            bytes_after=files_size(path, (DB_NAME, DB_NAME + "-wal")),
            seconds=time.perf_counter() - t0,
        )
    finally:
        lock.release()


def _codec_of(path: Path, timeout: float) -> str:
    conn = db.connect(path / DB_NAME, timeout)
    try:
        return db.check_schema(conn, path).name
    finally:
        conn.close()


def _migrate(
    conn: sqlite3.Connection,
    path: Path,
    codec: str | CodecSpec | None,
    batch_rows: int,
    on_progress: Callable[[int, int], None] | None,
) -> MigrationReport | None:
    problem = db.health_problem(conn)
    if problem:
        raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
    version = db.format_version(conn)
    if version is None:
        raise StoreError(f"{path} holds an empty database, not a fingerprint store")
    source: Codebooks | None = None
    if version == 1:
        target = get_codec(codec)
        source_codec = "float32"
    else:
        spec = db.check_schema(conn, path)  # newer formats and unknown codecs raise here
        target = spec if codec is None else get_codec(codec)
        if target.same_codec(spec):
            logger.info("store %s already uses codec %s: nothing to migrate", path, spec.name)
            _drop_work_tables(conn)
            return None
        source = Codebooks(spec)
        source.refresh(conn)
        source_codec = spec.name
    resumed = _prepare_work_tables(conn, target, version)
    books = Codebooks(target, tables=_NEW)
    books.refresh(conn)
    if not resumed:
        _train_target(conn, books, source, version)
    total = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    done = conn.execute(f"SELECT COUNT(*) FROM {_NEW[1]}").fetchone()[0]
    damaged = 0
    while True:
        last = conn.execute("SELECT value FROM migrate_state WHERE name = 'last'").fetchone()
        rows = _read(conn, version, source, int(last[0]) if last else 0, batch_rows)
        if not rows:
            break
        with _transaction(conn):
            good = [(eid, key, last_used, fp) for eid, key, last_used, fp in rows if fp is not None]
            damaged += len(rows) - len(good)
            encoded = books.encode_many(conn, [(key, fp) for _, key, _, fp in good])
            for (eid, _, last_used, _), e in zip(good, encoded, strict=True):
                conn.execute(
                    f"INSERT INTO {_NEW[1]}(id, key, n_words, dim, codebook, nbytes, last_used, "
                    "checksum, vectors, spans) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (eid, e.key, e.n_words, e.dim, e.codebook, e.nbytes, last_used,
                     e.checksum, e.vectors, e.spans),
                )  # fmt: skip
                db.count_codebook(conn, e.codebook, 1, e.n_words, _NEW[0])
            conn.execute("INSERT OR REPLACE INTO migrate_state VALUES ('last', ?)", (rows[-1][0],))
        done += len(rows)
        if on_progress is not None:
            on_progress(min(done, total), total)
    with _transaction(conn):
        dims = {int(r[0]) for r in conn.execute(f"SELECT DISTINCT dim FROM {_NEW[1]}")}
        books.maybe_train(conn, dims)  # a small store reaching train_min only now
        _swap(conn, target)
    entries = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    logger.info(
        "migrated %s to codec %s: %d entries, %d damaged", path, target.name, entries, damaged
    )
    return MigrationReport(version, source_codec, target.name, entries, damaged, resumed, 0, 0, 0.0)


def _drop_work_tables(conn: sqlite3.Connection) -> None:
    with _transaction(conn):
        for table in (*_NEW, "migrate_state"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def _prepare_work_tables(conn: sqlite3.Connection, target: CodecSpec, version: int) -> bool:
    """Create the work tables, or keep them when they belong to the same migration."""
    state = f"{version}:{target.to_json()}"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "migrate_state" in tables:
        row = conn.execute("SELECT value FROM migrate_state WHERE name='target'").fetchone()
        if row is not None and row[0] == state:
            logger.info("resuming an interrupted migration")
            return True
    _drop_work_tables(conn)
    schema = db.SCHEMA.split("CREATE INDEX")[0]
    with _transaction(conn):
        conn.execute("CREATE TABLE migrate_state (name TEXT PRIMARY KEY, value NOT NULL)")
        conn.execute("INSERT INTO migrate_state VALUES ('target', ?)", (state,))
        for stmt in schema.split(";"):
            if "CREATE TABLE IF NOT EXISTS codebooks" in stmt:
                conn.execute(stmt.replace("codebooks", _NEW[0], 1))
            elif "CREATE TABLE IF NOT EXISTS entries" in stmt:
                conn.execute(stmt.replace("entries", _NEW[1], 1))
    return False


def _read(
    conn: sqlite3.Connection, version: int, source: Codebooks | None, after: int, limit: int
) -> list[tuple[int, str, float, ChunkFingerprints | None]]:
    """The next ``limit`` source entries after id ``after``: ``(id, key, last_used, fp)``;
    ``fp`` is ``None`` for a damaged row."""
    if version == 1:
        out: list[tuple[int, str, float, ChunkFingerprints | None]] = []
        for eid, key, n, d, csum, vec, spans, last_used in conn.execute(
            f"SELECT {_V1_COLUMNS} FROM entries WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ):
            got = read_v1_row(key, n, d, csum, vec, spans)
            out.append((eid, key, last_used, None if got is None else ChunkFingerprints(*got)))
        return out
    assert source is not None
    raw = conn.execute(
        f"SELECT {ROW_COLUMNS}, last_used FROM entries WHERE id > ? ORDER BY id LIMIT ?",
        (after, limit),
    ).fetchall()
    rows = [Entry.from_row(r) for r in raw]
    try:
        decoded, _ = source.decode_rows(conn, rows)
    except DamagedCodebook as exc:
        raise StoreError(f"a codebook of the store is damaged ({exc}); cannot migrate") from exc
    return [
        (r.id, r.key, float(line[-1]), decoded.get(r.id)) for r, line in zip(rows, raw, strict=True)
    ]


def _train_target(
    conn: sqlite3.Connection, books: Codebooks, source: Codebooks | None, version: int
) -> None:
    """Train the target codec on a documented sample of the source (one transaction)."""
    spec = books.spec
    if not spec.trained:
        return
    stats = np.array(
        conn.execute("SELECT id, n_words, dim FROM entries ORDER BY id").fetchall(), dtype=np.int64
    ).reshape(-1, 3)
    for dim in sorted({int(d) for d in stats[:, 2]}):
        mine = stats[stats[:, 2] == dim]
        if int(mine[:, 1].sum()) < spec.train_min:
            continue  # stays in float16 until enough vectors exist (the usual rule)
        chosen = training_rows(mine[:, 0], mine[:, 1], spec)
        vectors = []
        for lo in range(0, len(chosen), 500):
            part = [int(i) for i in chosen[lo : lo + 500]]
            for _, _, _, fp in _by_ids(conn, version, source, part):
                if fp is not None:
                    vectors.append(fp.vectors)
        sample = training_sample(np.concatenate(vectors), spec)
        if len(sample) < spec.train_min:
            continue
        trained = train(spec, sample)
        with _transaction(conn):
            books.add_trained(conn, dim, trained, len(sample))


def _by_ids(
    conn: sqlite3.Connection, version: int, source: Codebooks | None, ids: list[int]
) -> list[tuple[int, str, float, ChunkFingerprints | None]]:
    marks = ",".join("?" * len(ids))
    if version == 1:
        return [
            (eid, key, last, None if got is None else ChunkFingerprints(*got))
            for eid, key, n, d, csum, vec, spans, last in conn.execute(
                f"SELECT {_V1_COLUMNS} FROM entries WHERE id IN ({marks}) ORDER BY id", ids
            )
            for got in [read_v1_row(key, n, d, csum, vec, spans)]
        ]
    assert source is not None
    rows = [
        Entry.from_row(r)
        for r in conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE id IN ({marks}) ORDER BY id", ids
        )
    ]
    decoded, _ = source.decode_rows(conn, rows)
    return [(r.id, r.key, 0.0, decoded.get(r.id)) for r in rows]


def _swap(conn: sqlite3.Connection, target: CodecSpec) -> None:
    """Inside the final transaction: new tables replace the old, meta recounted and stamped."""
    conn.execute(f"DELETE FROM {_NEW[1]} WHERE id NOT IN (SELECT id FROM entries)")
    conn.execute("DROP TABLE entries")
    conn.execute("DROP TABLE IF EXISTS codebooks")
    conn.execute(f"ALTER TABLE {_NEW[1]} RENAME TO entries")
    conn.execute(f"ALTER TABLE {_NEW[0]} RENAME TO codebooks")
    conn.execute("DROP INDEX IF EXISTS entries_last_used")
    conn.execute("CREATE INDEX entries_last_used ON entries(last_used, id)")
    conn.execute("DROP TABLE migrate_state")
    n, vectors, payload = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(n_words), 0), COALESCE(SUM(nbytes), 0) FROM entries"
    ).fetchone()
    conn.execute(
        "UPDATE codebooks SET n_entries = (SELECT COUNT(*) FROM entries e WHERE e.codebook = "
        "codebooks.id), n_vectors = (SELECT COALESCE(SUM(n_words), 0) FROM entries e WHERE "
        "e.codebook = codebooks.id)"
    )
    meta = {
        "format_version": db.STORE_FORMAT_VERSION,
        "codec": target.name,
        "codec_spec": target.to_json(),
        "token": secrets.token_hex(16),
        "n_entries": n,
        "n_vectors": vectors,
        "payload_bytes": payload,
    }
    conn.executemany("INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)", meta.items())
    for name in ("generation", "deletions"):
        conn.execute("INSERT OR IGNORE INTO meta(name, value) VALUES (?, 0)", (name,))
        conn.execute("UPDATE meta SET value = value + 1 WHERE name = ?", (name,))
