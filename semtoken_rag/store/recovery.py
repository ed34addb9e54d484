"""Opening a store directory: format and codec checks, quarantine of damaged files, read-only.

Writable opens run with the cross-process lock held, so no other process writes while files
are checked or moved.  Damaged files are never deleted: they go to
``<dir>/quarantine-<timestamp>/``.  Read-only opens never move, create or lock anything: damage
is reported as :class:`StoreError` instead of repaired.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from semtoken_rag.errors import StoreError
from semtoken_rag.store import db
from semtoken_rag.store.codebooks import Codebooks, DamagedCodebook
from semtoken_rag.store.codecs import CodecSpec
from semtoken_rag.store.fsutil import quarantine
from semtoken_rag.store.types import StoreDamagedError, warn_damage

logger = logging.getLogger(__name__)

DB_NAME = "fingerprints.sqlite3"
LOCK_NAME = ".lock"
DB_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm")
#: SQLite extended codes of a read-only connection that cannot create ``-shm``/``-wal``.
_READONLY_DIRECTORY = {1544, 14}  # SQLITE_READONLY_DIRECTORY, SQLITE_CANTOPEN


def open_database(
    directory: Path, timeout: float, verify: bool, spec: CodecSpec | None, default: CodecSpec
) -> tuple[sqlite3.Connection, Codebooks]:
    """A healthy writable connection and the store's codebooks, quarantining damage first.

    Args:
        directory: Store directory.
        timeout: SQLite busy timeout.
        verify: Run ``PRAGMA quick_check`` (reads the whole file).
        spec: The codec asked for (``None``: the store's, or ``default`` for a new store).
        default: Codec of a new store when ``spec`` is ``None``.

    Raises:
        StoreError: another format version, an unknown codec, a codec other than the store's,
            or an error that is not damage (permissions, locked): those are never "repaired".
    """
    path = directory / DB_NAME
    try:
        conn = db.connect(path, timeout)
    except sqlite3.DatabaseError as exc:
        if not db.is_damage(exc):
            raise StoreError(f"cannot open {path}: {exc}") from exc
        return _start_over(directory, None, str(exc), timeout, spec or default)
    try:
        problem = db.health_problem(conn) if verify else None
        if problem is None:
            new = db.format_version(conn) is None
            if not new:  # refused (another format or codec) before anything is written
                check_codec(db.check_schema(conn, directory), spec, directory)
            db.configure_writer(conn, path, new=new)
            if new:
                db.create_schema(conn, spec or default)
            books = Codebooks(db.check_schema(conn, directory))
            books.refresh(conn)
            return conn, books
    except (db.DamagedStore, DamagedCodebook) as exc:
        problem = str(exc)
    except StoreError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if not db.is_damage(exc):
            conn.close()
            raise StoreError(f"cannot open {path}: {exc}") from exc
        problem = str(exc)
    return _start_over(directory, conn, problem, timeout, spec or default)


def open_memory(timeout: float, spec: CodecSpec) -> tuple[sqlite3.Connection, Codebooks]:
    """A new store that lives in memory only (``FingerprintStore(None)``)."""
    conn = db.connect(None, timeout)
    db.configure_writer(conn, None, new=True)
    db.create_schema(conn, spec)
    return conn, Codebooks(db.check_schema(conn, "(memory)"))


def check_codec(stored: CodecSpec, asked: CodecSpec | None, where: object) -> None:
    """Refuse to open a store with a codec other than its own.

    Raises:
        StoreError: ``asked`` differs from ``stored`` (the message says what to do).
    """
    if asked is not None and not asked.same_codec(stored):
        raise StoreError(
            f"fingerprint store {where} uses codec {stored.name!r} "
            f"({stored.to_json()}); it was opened with codec {asked.name!r}. Open it with "
            f"codec=None to use its own codec, or ingest into a new directory with codec "
            f"{asked.name!r} (`semtoken-rag ingest DOCS --store NEW_DIR --codec {asked.name}`)"
        )


def _start_over(
    directory: Path,
    conn: sqlite3.Connection | None,
    problem: str,
    timeout: float,
    spec: CodecSpec,
) -> tuple[sqlite3.Connection, Codebooks]:
    if conn is not None:
        conn.close()
    where = quarantine(directory, DB_FILES)
    warn_damage(
        f"fingerprint store {directory} is damaged ({problem}); its files were moved to "
        f"{where} and an empty store was started (fingerprints will be recomputed)"
    )
    conn = db.connect(directory / DB_NAME, timeout)
    db.configure_writer(conn, directory / DB_NAME, new=True)
    db.create_schema(conn, spec)
    books = Codebooks(db.check_schema(conn, directory))
    books.refresh(conn)
    return conn, books


def open_read_only(
    directory: Path, timeout: float, verify: bool, spec: CodecSpec | None
) -> tuple[sqlite3.Connection, Codebooks]:
    """A read-only connection (no lock file, nothing created, moved or repaired).

    Without a ``-wal`` file (no process has the store open, or it was closed cleanly, or it is
    a copied snapshot) the database is opened as an immutable snapshot: SQLite creates no
    ``-wal``/``-shm`` and takes no lock.  Writes made by processes that open the store later are
    not seen until it is reopened (and a page they rewrite meanwhile fails its row checksum or
    SQLite's checks: a miss and a warning, never a wrong vector).  With a ``-wal`` file (a live
    or killed writer) ``mode=ro`` reads it through SQLite's shared memory; where that cannot
    work (the ``-shm`` is missing and the directory is not writable) a WAL holding changes is a
    :class:`StoreError`, an empty one is ignored.

    Raises:
        StoreError: no store there, damage (:class:`StoreDamagedError`), un-checkpointed
            changes that cannot be read without write access, format/codec.
    """
    path = directory / DB_NAME
    if not path.is_file():
        raise StoreError(f"no fingerprint store at {directory} (missing {DB_NAME})")
    try:
        conn = _connect_read_only(directory, timeout)
        try:
            problem = db.health_problem(conn) if verify else None
            if problem is not None:
                raise db.DamagedStore(problem)
            stored = db.check_schema(conn, directory)
            check_codec(stored, spec, directory)
            books = Codebooks(stored)
            books.refresh(conn)
            return conn, books
        except BaseException:
            conn.close()
            raise
    except (db.DamagedStore, DamagedCodebook) as exc:
        raise damaged_error(directory, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        if db.is_damage(exc):
            raise damaged_error(directory, str(exc)) from exc
        raise StoreError(f"cannot open {path} read-only: {exc}") from exc


def damaged_error(directory: Path | None, problem: str) -> StoreDamagedError:
    """The error of a damaged store that may not be repaired here (read-only, or in use)."""
    return StoreDamagedError(
        f"fingerprint store {directory or '(memory)'} is damaged ({problem}); nothing was "
        "changed. Open it writable (read_only=False) to move the damaged files to a "
        "quarantine folder and start an empty store"
    )


def _connect_read_only(directory: Path, timeout: float) -> sqlite3.Connection:
    """A read-only connection whose format could be read (see :func:`open_read_only`).

    The first statement that reads the file (a PRAGMA of :func:`db.connect`, or the format)
    is where a write-ahead log that cannot be read without write access fails.
    """
    path, wal = directory / DB_NAME, directory / (DB_NAME + "-wal")
    try:
        conn = db.connect(path, timeout, read_only=True, immutable=not wal.exists())
        try:
            db.format_version(conn)
        except BaseException:
            conn.close()
            raise
        return conn
    except sqlite3.OperationalError as exc:
        code = getattr(exc, "sqlite_errorcode", 0)
        if code not in _READONLY_DIRECTORY or not wal.exists():
            raise
        if wal.stat().st_size > 0:
            raise StoreError(
                f"{path} has changes in its write-ahead log that cannot be read without "
                f"write access to {directory}; open it once writable (or copy the "
                "directory) to checkpoint them"
            ) from exc
        return db.connect(path, timeout, read_only=True, immutable=True)
