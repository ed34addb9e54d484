"""Opening a store directory: format and codec checks, the lock, quarantine, read-only opens.

Writable opens run under the cross-process lock; damaged files are moved to
``<dir>/quarantine-<timestamp>/``, never deleted.  Read-only opens never move, create or lock
anything: damage is a :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semtoken_rag.errors import StoreError
from semtoken_rag.store import db
from semtoken_rag.store.codebooks import Codebooks, DamagedCodebook
from semtoken_rag.store.codecs import CodecSpec, get_codec
from semtoken_rag.store.types import StoreDamagedError, warn_damage

logger = logging.getLogger(__name__)

DB_NAME = "fingerprints.sqlite3"
LOCK_NAME = ".lock"
DB_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm")
#: SQLite extended codes of a read-only connection that cannot create ``-shm``/``-wal``.
_READONLY_DIRECTORY = {1544, 14}  # SQLITE_READONLY_DIRECTORY, SQLITE_CANTOPEN


def open_database(
    directory: Path, timeout: float, verify: bool, spec: CodecSpec | None
) -> tuple[sqlite3.Connection, Codebooks]:
    """A healthy writable connection and the store's codebooks, quarantining damage first;
    ``spec`` is the codec asked for (``None``: the store's, or the default for a new store).

    Raises:
        StoreError: another format version, an unknown codec, a codec other than the store's,
            or an error that is not damage (permissions, locked): those are never "repaired".
    """
    path = directory / DB_NAME
    try:
        conn = db.connect(path, timeout)
        with _closed_on_error(conn):
            problem = db.health_problem(conn) if verify else None
            if problem is None:
                new = db.format_version(conn) is None
                if not new:  # refused (another format or codec) before anything is written
                    check_codec(db.check_schema(conn, directory), spec, directory)
                db.configure_writer(conn, path, new=new)
                if new:
                    db.create_schema(conn, spec or get_codec(None))
                return conn, _load(conn, directory)
        conn.close()
    except (db.DamagedStore, DamagedCodebook) as exc:
        problem = str(exc)
    except sqlite3.DatabaseError as exc:
        if not db.is_damage(exc):
            raise StoreError(f"cannot open {path}: {exc}") from exc
        problem = str(exc)
    return _start_over(directory, problem, timeout, spec)


def file_identity(directory: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of the database file in ``directory`` (``None``: missing)."""
    try:
        st = os.stat(directory / DB_NAME)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@dataclass
class WritableFile:
    """How a writable store object opens its directory's database, and which file it opened.

    A connection follows the file it opened, not its name: once another store object
    quarantines the file, this one would read and write the moved file, lost to later opens.
    :meth:`moved` (the identity at the name changed) tells it to open again, under the store's
    locks (which quarantine also takes).
    """

    directory: Path
    timeout: float
    verify_on_open: bool | None
    spec: CodecSpec | None
    opened: tuple[int, int] | None = None

    def open(self) -> tuple[sqlite3.Connection, Codebooks]:
        """:func:`open_database` (``quick_check`` as :func:`db.verify_default` says); call it
        under the store's locks, so the identity recorded is that of the file opened."""
        verify = db.verify_default(self.directory / DB_NAME, self.verify_on_open)
        conn, books = open_database(self.directory, self.timeout, verify, self.spec)
        self.opened = file_identity(self.directory)
        return conn, books

    def moved(self) -> bool:
        """Whether the file at the store's name is no longer the one opened."""
        return self.opened != file_identity(self.directory)

    def reopen(self) -> tuple[sqlite3.Connection, Codebooks] | None:
        """:meth:`open` after another store object quarantined the file."""
        opened = self.open()
        logger.warning("fingerprint store %s: reconnected to its new database", self.directory)
        return opened


@dataclass
class ReadOnlyFile:
    """How a read-only store object opens its directory's database, and when to open it again.

    Without a ``-wal`` file the connection is an immutable snapshot SQLite never rereads, so a
    later writer's changes would be missed (or, once checkpointed, read as "malformed").  A
    change of the file's identity, size or time, or a ``-wal`` appearing, reopens it before the
    next read; a ``mode=ro`` connection follows writers itself, so there only a moved file counts.
    """

    directory: Path
    timeout: float
    verify_on_open: bool | None
    spec: CodecSpec | None
    opened: tuple[object, ...] | None = None
    immutable: bool = False
    failed: tuple[object, ...] | None = None  # the state a reopen last failed in (logged once)

    def open(self) -> tuple[sqlite3.Connection, Codebooks]:
        """:func:`open_read_only` (``quick_check`` per :func:`db.verify_default`, on the first
        open only: a reopen follows a writer, which keeps the file consistent)."""
        before = self._state()
        verify = self.opened is None and db.verify_default(
            self.directory / DB_NAME, self.verify_on_open
        )
        opened = open_read_only(self.directory, self.timeout, verify, self.spec)
        self.opened, self.immutable = before, opened[2]
        return opened[0], opened[1]

    def moved(self) -> bool:
        """Whether the connection no longer reads what the directory holds."""
        now = self._state()
        return now != self.opened if self.immutable else now[:2] != (self.opened or ())[:2]

    def reopen(self) -> tuple[sqlite3.Connection, Codebooks] | None:
        """:meth:`open`, or ``None`` while the file is gone or unreadable (deleted, a writer's
        quarantine half done): the old snapshot serves and the next read tries again.  Another
        codec or format there is refused, as at the first open."""
        try:
            opened = self.open()
        except StoreError as exc:
            state = self._state()
            if state[0] is not None and not isinstance(exc, StoreDamagedError):
                raise
            level = logging.DEBUG if state == self.failed else logging.WARNING
            logger.log(level, "fingerprint store %s: not reopened (%s)", self.directory, exc)
            self.failed = state
            return None
        logger.debug("fingerprint store %s: reopened after a writer's change", self.directory)
        return opened

    def _state(self) -> tuple[object, ...]:
        try:
            st = os.stat(self.directory / DB_NAME)
        except OSError:
            return None, None, None, None, False
        wal = (self.directory / (DB_NAME + "-wal")).exists()
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, wal


@contextlib.contextmanager
def _closed_on_error(conn: sqlite3.Connection) -> Iterator[None]:
    """Close ``conn`` if the block raises anything: the connection then reaches no caller."""
    try:
        yield
    except BaseException:
        conn.close()
        raise


def open_new(
    directory: Path | None, timeout: float, spec: CodecSpec | None
) -> tuple[sqlite3.Connection, Codebooks]:
    """A new, empty store of codec ``spec`` (``None``: the default): in memory only
    (``directory`` None) or after a quarantine."""
    path = None if directory is None else directory / DB_NAME
    conn = db.connect(path, timeout)
    with _closed_on_error(conn):
        db.configure_writer(conn, path, new=True)
        db.create_schema(conn, spec or get_codec(None))
        return conn, _load(conn, directory or "(memory)")


def _load(conn: sqlite3.Connection, where: object, asked: CodecSpec | None = None) -> Codebooks:
    """The codebooks of a store whose format is checked (refused: another codec than asked)."""
    stored = db.check_schema(conn, where)
    check_codec(stored, asked, where)
    books = Codebooks(stored)
    books.refresh(conn)
    return books


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
    directory: Path, problem: str, timeout: float, spec: CodecSpec | None
) -> tuple[sqlite3.Connection, Codebooks]:
    """Quarantine a damaged database and start an empty one (warned once it is started).

    Raises:
        StoreError: the files cannot be moved or the new database cannot be written (full disk).
    """
    where = None
    try:
        where = quarantine(directory, DB_FILES)
        opened = open_new(directory, timeout, spec)
    except (OSError, sqlite3.Error) as exc:
        moved = f"its files were moved to {where}" if where else "its files could not be moved"
        raise StoreError(
            f"fingerprint store {directory} is damaged ({problem}); {moved}, but no empty "
            f"store could be started: {exc}"
        ) from exc
    warn_damage(
        f"fingerprint store {directory} is damaged ({problem}); its files were moved to "
        f"{where} and an empty store was started (fingerprints will be recomputed)"
    )
    return opened


def open_read_only(
    directory: Path, timeout: float, verify: bool, spec: CodecSpec | None
) -> tuple[sqlite3.Connection, Codebooks, bool]:
    """A read-only connection (no lock file, nothing created, moved or repaired).

    Without a ``-wal`` file (no open writer, or a copied snapshot) it is an immutable snapshot
    (no ``-wal``/``-shm``, no lock; :class:`ReadOnlyFile` reopens it after a writer's change).
    With one, ``mode=ro`` reads through shared memory; where it cannot (no ``-shm``, directory
    not writable) a WAL holding changes is a :class:`StoreError`.

    Returns:
        The connection, the store's codebooks, and whether the connection is immutable.

    Raises:
        StoreError: no store there, an unreadable folder, damage (:class:`StoreDamagedError`),
            changes unreadable without write access, another format or codec.
    """
    path = directory / DB_NAME
    try:
        if not path.is_file():
            raise StoreError(f"no fingerprint store at {directory} (missing {DB_NAME})")
    except OSError as exc:  # a folder without search permission
        raise StoreError(f"cannot read {directory}: {exc.strerror or exc}") from exc
    try:
        conn, immutable = _connect_read_only(directory, timeout)
        with _closed_on_error(conn):
            problem = db.health_problem(conn) if verify else None
            if problem is not None:
                raise db.DamagedStore(problem)
            return conn, _load(conn, directory, spec), immutable
    except (db.DamagedStore, DamagedCodebook, sqlite3.DatabaseError) as exc:
        if isinstance(exc, sqlite3.DatabaseError) and not db.is_damage(exc):
            raise StoreError(f"cannot open {path} read-only: {exc}") from exc
        raise StoreDamagedError(
            f"fingerprint store {directory} is damaged ({exc}); nothing was changed. Open it "
            "writable (read_only=False) to move the damaged files to a quarantine folder and "
            "start an empty store"
        ) from exc


def _connect_read_only(directory: Path, timeout: float) -> tuple[sqlite3.Connection, bool]:
    """A read-only connection whose format could be read, and whether it is immutable (see
    :func:`open_read_only`); a WAL unreadable without write access fails at the first read."""
    path, wal = directory / DB_NAME, directory / (DB_NAME + "-wal")
    immutable = not wal.exists()
    try:
        conn = db.connect(path, timeout, read_only=True, immutable=immutable)
        with _closed_on_error(conn):
            db.format_version(conn)
        return conn, immutable
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
        return db.connect(path, timeout, read_only=True, immutable=True), True


def quarantine(directory: Path, names: Iterable[str]) -> Path | None:
    """Move the named files of ``directory`` into ``directory/quarantine-<timestamp>/``: kept,
    never deleted, so a person can inspect or recover them.

    Returns:
        The quarantine folder, or ``None`` when none of the files existed.
    """
    present = [directory / n for n in names if (directory / n).exists()]
    if not present:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = directory / f"quarantine-{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    target.mkdir(parents=True, exist_ok=True)
    for p in present:
        os.replace(p, target / p.name)
    with contextlib.suppress(OSError):  # the renames survive power loss (where supported)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return target


def files_size(directory: Path, names: Iterable[str]) -> int:
    """Bytes of the files ``names`` in ``directory`` (missing ones count 0)."""
    total = 0
    for name in names:
        with contextlib.suppress(OSError):
            total += (directory / name).stat().st_size
    return total


def held_elsewhere(lock: Any) -> bool:
    """Whether another process holds a store's ``filelock.FileLock`` now (``None``: a store in
    memory, never), checked without waiting (a lookup asks before writing anything)."""
    if lock is None:
        return False
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except (Timeout, OSError, RuntimeError):  # RuntimeError: inherited across fork (unusable)
        return True
    lock.release()
    return False


def acquire_lock(lock: Any, path: Path | str, timeout: float | None = None) -> None:
    """Take a store's ``filelock.FileLock`` within ``timeout`` seconds (``None``: the lock's
    own), or a :class:`StoreError`."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=timeout)
    except Timeout as exc:
        raise StoreError(
            f"timed out waiting for the lock of {path} (another process writing)"
        ) from exc
    except OSError as exc:
        raise StoreError(
            f"cannot take the lock file of {path} ({exc}); open the store with read_only=True "
            "for lookups"
        ) from exc
    except RuntimeError as exc:  # filelock refuses a lock object inherited across fork
        msg = f"store {path} was opened before this process forked ({exc}); open it in this one"
        raise StoreError(msg) from exc


def prepare_directory(path: Path) -> None:
    """Create a writable store directory, or raise :class:`StoreError` saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create store directory {path}: {exc}") from exc
    if not path.is_dir():
        raise StoreError(f"{path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(
            f"store directory {path} is not writable; open it with read_only=True for lookups"
        )
