"""``FingerprintStore``: word fingerprints of whole documents, served to any chunk cut from them.

The unit stored is the document, so any chunking hits: a chunk is found inside it and verified
word by word (:mod:`~semtoken_rag.store.locate`).  SQLite in WAL mode is the only source of
truth and every change is one ``BEGIN IMMEDIATE`` transaction, so after a crash it is all there
or absent; every read is checksummed, so damage is a miss and a :class:`StoreWarning`, never a
wrong vector.  Codes are made where the encoder runs (:mod:`~semtoken_rag.store.encoding`).
See docs/store.md, "Crash safety".
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from semtoken_rag.errors import StoreError
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource
from semtoken_rag.inputs import check_store_args, check_strings, model_text
from semtoken_rag.store import db, forking, recovery, types, writes
from semtoken_rag.store.codebooks import CodecSet, DamagedCodebook
from semtoken_rag.store.codecs import CodecSpec, get_codec
from semtoken_rag.store.encoding import EncodedDocument, encode_by_dim
from semtoken_rag.store.locate import ChunkQuery, Locator, Lookup, chunk_queries

logger = logging.getLogger(__name__)

PUT_WAIT_S = 2.0  #: Seconds a :meth:`FingerprintStore.put` waits for another process's write.


class FingerprintStore:
    """Persistent (or in-memory) store of document fingerprints (SQLite, a FAISS/numpy codec).

    Args:
        path: Store directory (created if missing), or ``None`` for a store in memory only.
        codec: Codec name (:data:`~.codecs.CODECS`) or a :class:`~.codecs.CodecSpec`; ``None``:
            the store's own (``pq64`` if new); another codec than the store's is a StoreError.
        max_bytes: Evict least recently used documents beyond this many payload bytes.
        verify_on_open: ``True`` runs ``PRAGMA quick_check`` (reads the whole file), ``False``
            skips it, ``None`` (default) runs it for databases up to 1 GiB.
        touch_interval: Hits refresh a document's LRU time at most this often (seconds).
        lock_timeout: Seconds to wait for another process's write before :class:`StoreError`.
        read_only: Lookups only: no lock file, nothing created, moved or repaired; writes store
            nothing (logged once); damage raises :class:`StoreError`.

    In a process forked after the open, the object reads through a connection of its own and
    refuses writes (:mod:`~semtoken_rag.store.forking`).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        codec: str | CodecSpec | None = None,
        max_bytes: int | None = None,
        verify_on_open: bool | None = None,
        touch_interval: float = 1.0,
        lock_timeout: float = 600.0,
        read_only: bool = False,
    ) -> None:
        touch_interval, lock_timeout = check_store_args(
            path, touch_interval, lock_timeout, verify_on_open
        )
        self.max_bytes = types.check_max_bytes(max_bytes)
        asked = None if codec is None else get_codec(codec)
        self.path = None if path is None else Path(path)
        self._where = str(self.path or "(memory)")
        self.read_only = bool(read_only)
        self.hits = self.misses = 0
        self._lock = threading.RLock()
        self._closed = False
        self._flock: Any = None
        self._touches = writes.Touches(float(touch_interval))
        self._warned_read_only = False
        self._pid = os.getpid()  # the process whose connection ``_conn`` is
        self._file: recovery.WritableFile | recovery.ReadOnlyFile | None = None  # _reconnect
        if self.path is None:
            if read_only:
                raise StoreError("read_only needs a store directory (path=None is in memory)")
            self._conn, self._books = recovery.open_new(None, lock_timeout, asked)
        elif read_only:
            self._file = recovery.ReadOnlyFile(self.path, lock_timeout, verify_on_open, asked)
            self._conn, self._books = self._file.open()
        else:
            recovery.prepare_directory(self.path)
            from filelock import FileLock

            self._flock = FileLock(str(self.path / recovery.LOCK_NAME), timeout=lock_timeout)
            self._file = recovery.WritableFile(self.path, lock_timeout, verify_on_open, asked)
            with self._write_lock():
                self._conn, self._books = self._file.open()
        forking.track(self)  # reset in a forked child (lock, connection, counters)

    # -- locking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write_lock(self, timeout: float | None = None) -> Iterator[None]:
        """Thread lock, then the cross-process file lock (always in this order), waiting for
        another process's write up to ``timeout`` (``None``: ``lock_timeout``)."""
        with self._lock:
            if self._flock is None:
                yield
                return
            recovery.acquire_lock(self._flock, self._where, timeout)
            try:
                yield
            finally:
                self._flock.release()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under both locks; on any error the codebook cache is rolled
        back too (a codebook the rollback removed must not encode blocks no reopen decodes)."""
        with self._write_lock():
            conn = self._live()
            loaded = dict(self._books.by_id)
            try:
                with db.transaction(conn):
                    yield conn
            except BaseException:
                self._books.by_id = loaded
                raise

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the fingerprint store is closed")
        with self._lock:  # a process forked after the open: a connection of its own
            if self._pid != os.getpid():
                forking.adopt(self)
        if self._file is not None and self._file.moved():
            self._reconnect(self._file)
        return self._conn

    def _reconnect(self, file: recovery.WritableFile | recovery.ReadOnlyFile) -> None:
        """Open the directory's database again (quarantined elsewhere, or changed by a writer)."""
        writable = isinstance(file, recovery.WritableFile)  # a read-only file needs no lock
        with self._write_lock() if writable else self._lock:  # quarantine runs under it
            fresh = file.reopen() if file.moved() else None  # not done by another thread
            if fresh is not None:
                old = self._conn
                self._touches.clear()  # its LRU refreshes name the old file's rows
                self._conn, self._books = fresh
                old.close()  # SQLite leaves a moved file's log alone (no checkpoint, no delete)

    @property
    def codec(self) -> CodecSpec:
        """The store's codec."""
        return self._books.spec

    # -- lookups (the engine's store protocol) -------------------------------------------------
    def lookup(
        self,
        texts: Sequence[str],
        encoder_id: str,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> list[ChunkFingerprints | None]:
        """Fingerprints of each chunk from the stored document it occurs in, ``None`` where
        no stored document holds it (see :mod:`semtoken_rag.store.locate`).

        Args:
            texts: Chunk texts, exactly as they will be compressed.
            encoder_id: ``cache_id`` of the asking encoder (only its documents are served).
            sources: Optional hints per chunk (document name, start offset).

        Returns:
            Per chunk: ``(n_words, dim) float32`` unit vectors and the chunk's own word spans.
        """
        queries = chunk_queries(texts, encoder_id, sources)
        with self._lock:
            result = self._locate(queries, encoder_id)
            full = not self.read_only and self._touches.note(result.served)
            if result.damaged:
                self._remove_damaged(result.damaged)
            if full:
                self._flush_touches(wait=False)
            n_hit = sum(fp is not None for fp in result.found)
            self.hits, self.misses = self.hits + n_hit, self.misses + len(queries) - n_hit
        return result.found

    def _locate(self, queries: list[ChunkQuery], encoder_id: str) -> Lookup:
        try:
            conn = self._live()  # in a forked child: damage its own open refused is a miss
            with db.transaction(conn, "DEFERRED"):
                sql = "SELECT id FROM encoders WHERE cache_id = ?"
                encoder = conn.execute(sql, (encoder_id,)).fetchone()
                if encoder is not None and queries:
                    return Locator(conn, self._books, encoder[0]).run(queries)
        except DamagedCodebook as exc:
            types.warn_damage(f"a codebook of {self._where} is damaged ({exc}); lookups miss")
        except types.StoreDamagedError as exc:
            types.warn_damage(f"{exc}; the chunks count as misses")
        except sqlite3.DatabaseError as exc:
            where = f"fingerprint store {self._where} read failed ({exc})"
            types.sqlite_failed(exc, "read", f"{where}; the chunks count as misses")
        return Lookup(found=[None] * len(queries))

    def contains(self, keys: Sequence[str]) -> set[str]:
        """The subset of document ``keys`` stored (nothing read but the keys)."""
        wanted = list(dict.fromkeys(map(model_text, check_strings(keys, "keys"))))
        with self._lock:
            try:
                sql = "SELECT key FROM documents WHERE key IN ({})"
                return {r[0] for r in db.select_in(self._live(), sql, wanted)}
            except types.StoreDamagedError as exc:  # a forked child's own open (as lookup)
                types.warn_damage(f"{exc}; nothing counts as stored")
                return set()
            except sqlite3.DatabaseError as exc:
                where = f"fingerprint store {self._where} read failed ({exc})"
                types.sqlite_failed(exc, "read", f"{where}; nothing counts as stored")
                return set()

    def __len__(self) -> int:
        with self._lock:
            return db.read_counters(self._live())["documents"]

    # -- writing ------------------------------------------------------------------------------
    def codec_set(self, dim: int) -> CodecSet:
        """The codebooks an encoder needs to encode documents of ``dim`` for this store (ship
        it to wherever the encoder runs; see :func:`~.encoding.encode_documents`).

        Raises:
            StoreError: a read-only store (it refuses writes).
            StoreDamagedError: a codebook (or the file) is damaged (a writable open repairs it).
        """
        dim = writes.check_dim(dim)
        if self.read_only:
            raise StoreError(f"fingerprint store {self._where} is read-only: nothing to encode for")
        try:
            with self._transaction() as conn:
                self._books.refresh(conn)
                return self._books.codec_set(conn, int(dim))
        except (DamagedCodebook, sqlite3.DatabaseError) as exc:
            types.codec_set_failed(exc, self._where)

    def write(self, docs: Sequence[EncodedDocument]) -> int:
        """Write encoded documents in one transaction (documents already stored only gain
        their names); trains the codec when its staged words reach ``train_min``.

        Returns:
            Documents newly written.

        Raises:
            CodebookChangedError: a document names a codebook the store does not hold with
                that digest (nothing is written).
        """
        docs = writes.check_encoded(docs)
        if not docs or self._refuse_write():
            return 0
        try:
            with self._write_lock():  # held to the vacuum: nothing waits after the commit
                with self._transaction() as conn:
                    self._books.refresh(conn)
                    writes.check_codebooks(self._books, docs, self._where)
                    added = writes.insert_documents(conn, docs)
                    trained = added > 0 and writes.maybe_train(conn, self._books, docs)
                    self._touches.write(conn)
                    if added and self.max_bytes is not None:
                        writes.evict_lru(conn, self.max_bytes)
                if trained:  # the float16 staging pages are free now: hand them back
                    writes.reclaim_pages(self._live())
        except (sqlite3.DatabaseError, DamagedCodebook) as exc:  # a codebook: by another process
            types.write_failed(exc, self._where, "new fingerprints were not stored")
            return 0
        logger.debug("wrote %d new of %d documents", added, len(docs))
        return added

    def put(
        self,
        texts: Sequence[str],
        fingerprints: Sequence[ChunkFingerprints],
        encoder_id: str,
    ) -> None:
        """Store texts the engine had to encode (query-time misses) as documents of their own,
        so the next lookup hits (unsound fingerprints are logged, not stored).  A request must not
        wait minutes for a cache entry: :class:`StoreError` after :data:`PUT_WAIT_S`."""
        docs = writes.finite_documents(texts, fingerprints, encoder_id)
        if not docs or self._refuse_write():
            return
        wait = min(PUT_WAIT_S, getattr(self._flock, "timeout", 0.0))

        def books(dim: int) -> CodecSet:  # nested acquisitions inside do not wait
            with self._write_lock(wait):
                return self.codec_set(dim)

        try:
            encoded = encode_by_dim(docs, books, encoder=encoder_id)  # no lock held: lookups run
            with self._write_lock(wait):
                self.write(encoded)
        except types.StoreDamagedError as exc:  # as write(): damage is a warning, not stored
            types.warn_damage(f"{exc}; new fingerprints were not stored")

    def add_names(self, names: Mapping[str, Sequence[str]]) -> None:
        """Record more names (a file path, a document id) of stored documents, by key (unknown
        keys are ignored)."""
        names = writes.check_names(names)
        if not names or self._refuse_write():
            return
        try:
            with self._transaction() as conn:
                writes.insert_names(conn, names)
        except sqlite3.DatabaseError as exc:
            types.write_failed(exc, self._where, "the names were not recorded")

    def _refuse_write(self) -> bool:
        if self.read_only:
            if not self._warned_read_only:
                logger.warning("read-only fingerprint store %s: nothing new is stored", self)
                self._warned_read_only = True
            return True
        self._live()
        return False

    # -- failures and maintenance ---------------------------------------------------------------
    def _remove_damaged(self, docs: set[int]) -> None:
        # A lookup never waits for the write lock: a later lookup that meets them removes them.
        busy = not self.read_only and recovery.held_elsewhere(self._flock)
        verb = "left in place (read-only store)" if self.read_only else "removed"
        types.warn_damage(
            f"{len(docs)} documents of {self._where} failed their checksums; treated as misses "
            f"and {'left for a later lookup (another process is writing)' if busy else verb}"
        )
        if self.read_only or busy:
            return
        try:
            with self._transaction() as conn:
                conn.executemany("DELETE FROM documents WHERE id = ?", [(d,) for d in docs])
        except sqlite3.DatabaseError as exc:  # the lookup's result stands either way
            types.removal_failed(exc, self._where)

    def _flush_touches(self, *, wait: bool) -> None:
        """Write buffered LRU refreshes now (skipped, not waited for, when ``wait`` is False
        and another process is writing: LRU time is advisory)."""
        if not self._touches.pending or self.read_only or self._closed:
            return
        if not wait and recovery.held_elsewhere(self._flock):
            return
        try:
            with self._transaction() as conn:
                self._touches.write(conn)
        except (sqlite3.DatabaseError, StoreError) as exc:
            logger.debug("LRU time update skipped: %s", exc)
            self._touches.clear()

    # -- life cycle ---------------------------------------------------------------------------
    def stats(self) -> types.StoreStats:
        """Counters of this process and sizes of the store."""
        with self._lock:
            size = 0 if self.path is None else recovery.files_size(self.path, recovery.DB_FILES)
            return types.collect_stats(self._live(), self._books, self.hits, self.misses, size)

    def verify(self) -> list[str]:
        """Full consistency check (slow: reads every block); returns the problems found."""
        with self._lock:
            try:
                return types.verify_database(self._live())
            except (sqlite3.DatabaseError, types.StoreDamagedError) as exc:  # a forked child's
                return [f"sqlite: {exc}"]

    def flush(self) -> None:
        """Write buffered LRU refreshes."""
        with self._lock:
            self._flush_touches(wait=True)

    def close(self) -> None:
        """Write buffered LRU refreshes, merge the write-ahead log, close (idempotent)."""
        with self._lock:
            if self._closed:
                return
            own = self._pid == os.getpid()  # else the parent's: forking already dealt with it
            try:
                self._flush_touches(wait=True)
                if self.path is not None and not self.read_only and own:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._closed = True
                if own:
                    self._conn.close()

    def __enter__(self) -> FingerprintStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ro = ", read_only=True" if self.read_only else ""
        where, codec = self._where, self.codec.name
        return f"FingerprintStore({where!r}, codec={codec!r}, max_bytes={self.max_bytes}{ro})"
