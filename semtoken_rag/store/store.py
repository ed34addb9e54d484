"""``FingerprintStore``: persistent (or in-memory) content-addressed chunk fingerprints.

Design (why it is crash-safe and compact):

* **SQLite is the only source of truth.**  Each entry row holds the key, shape, the id of the
  codebook its vectors were encoded with, a sha256 checksum and the encoded vectors and spans.
  Every change (insert, eviction, removal of a damaged row, training of the codec) is one
  ``BEGIN IMMEDIATE`` transaction that also updates the counters in ``meta`` and draws a
  fresh random ``token``.  SQLite's WAL makes each transaction atomic and durable across a
  process kill: a reader sees all of a batch or none of it.
* **A codec makes it small** (:mod:`semtoken_rag.store.codecs`, default ``pq64``: 64 bytes per
  384-dim word instead of 1,536).  The codec, its description and its trained codebooks (with
  digests) are part of the store; a row is never decoded with another codebook
  (:mod:`semtoken_rag.store.codebooks`).  Decoded vectors are float32, L2-normalised.
* **Every read is verified**: the row checksum covers key, shape, codebook digest and bytes; a
  mismatch is a miss, a warning, and the row is deleted (it is recomputed on the next put).
* **Damage on open** (``PRAGMA quick_check`` fails, the file is not a database, a codebook
  fails its digest) moves the damaged files to ``<dir>/quarantine-<timestamp>/``, warns, and
  starts an empty store.  A read-only store reports damage as :class:`StoreError` instead.
* **No search index unless asked**: :meth:`search` builds an in-memory index of the stored
  codes on first use (:mod:`semtoken_rag.store.index`); nothing is persisted beside SQLite.
* **Concurrency**: a ``threading.RLock`` serialises threads of a process; a
  ``filelock.FileLock`` on ``<dir>/.lock`` serialises writers and recovery across processes
  (held only for the write itself; readers rely on WAL snapshots).

Size limit: with ``max_bytes`` the least recently used entries are evicted in the same
transaction as the insert that overflowed the limit.  ``max_bytes`` counts payload bytes
(encoded vectors + spans).  Hits refresh an entry's LRU time at most every ``touch_interval``
seconds; the refreshes are buffered and written with the next write (or on :meth:`flush` /
:meth:`close`), so a lookup never waits for a write.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from semtoken_rag.errors import StoreError
from semtoken_rag.fingerprints import ChunkFingerprints
from semtoken_rag.store import db
from semtoken_rag.store.codebooks import ROW_COLUMNS, Codebooks, DamagedCodebook, Entry
from semtoken_rag.store.codecs import CodecSpec, get_codec
from semtoken_rag.store.fsutil import acquire_lock, files_size, prepare_directory, verify_default
from semtoken_rag.store.gpu import check_use_gpu
from semtoken_rag.store.index import CodeIndex
from semtoken_rag.store.maintenance import (
    TouchBuffer,
    delete_if_unchanged,
    evict_lru,
    insert_entries,
)
from semtoken_rag.store.recovery import (
    DB_FILES,
    DB_NAME,
    LOCK_NAME,
    open_database,
    open_read_only,
)
from semtoken_rag.store.search import SearchMixin
from semtoken_rag.store.types import StoreStats, StoreWarning, warn_damage

logger = logging.getLogger(__name__)

#: Buffered LRU refreshes written without waiting for a put once this many are pending.
_TOUCH_FLUSH = 512
#: ``verify_on_open=None`` runs ``PRAGMA quick_check`` only below this database size.
VERIFY_MAX_BYTES = 1 << 30


class FingerprintStore(SearchMixin):
    """Content-addressed store of chunk fingerprints (SQLite, a FAISS or numpy codec).

    Args:
        path: Directory of a persistent store (created if missing), or ``None`` for a store
            that lives in memory only.
        codec: Codec name (see :data:`~semtoken_rag.store.codecs.CODECS`) or a
            :class:`~semtoken_rag.store.codecs.CodecSpec`; ``None`` = the store's own codec
            (a new store gets the default, ``pq64``).  Another codec than the store's is a
            :class:`StoreError` (use ``semtoken-rag store migrate``).
        max_bytes: Evict least recently used entries beyond this many payload bytes.
        use_gpu: ``auto``/``never``/``always`` for :meth:`search` (needs a FAISS GPU build;
            ``always`` without one raises :class:`StoreError` here, naming the active build).
        verify_on_open: ``True`` runs ``PRAGMA quick_check`` (reads the whole file), ``False``
            skips it, ``None`` (default) runs it for databases up to 1 GiB.
        touch_interval: Hits refresh an entry's LRU time at most this often (seconds).
        lock_timeout: Seconds to wait for another process's write before :class:`StoreError`.
        read_only: Open for lookups only: no lock file, nothing created, moved or repaired;
            :meth:`put_many` stores nothing (logged once), damage raises :class:`StoreError`.
            Use it for stores in directories you cannot write (another user's, a snapshot).

    Example:
        >>> with FingerprintStore("fp-store") as store:  # doctest: +SKIP
        ...     comp = Compressor(store=store)
        ...     store.add_texts(chunks, comp)
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        codec: str | CodecSpec | None = None,
        max_bytes: int | None = None,
        use_gpu: str = "auto",
        verify_on_open: bool | None = None,
        touch_interval: float = 1.0,
        lock_timeout: float = 600.0,
        read_only: bool = False,
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise StoreError(f"max_bytes must be positive, got {max_bytes}")
        asked = None if codec is None else get_codec(codec)
        self.path = None if path is None else Path(path)
        self.max_bytes = max_bytes
        self.use_gpu = check_use_gpu(use_gpu)
        self.read_only = read_only
        self.hits = 0
        self.misses = 0
        self._lock = threading.RLock()
        self._index: CodeIndex | None = None
        self._closed = False
        self._flock: Any = None
        self._touches = TouchBuffer(touch_interval)
        self._warned_read_only = False
        if self.path is None:
            if read_only:
                raise StoreError("read_only needs a store directory (path=None is in memory)")
            self._conn = db.connect(None, lock_timeout)
            spec = asked or get_codec(None)
            db.create_schema(self._conn, spec)
            self._books = Codebooks(db.check_schema(self._conn, "(memory)"))
            return
        verify = verify_default(self.path / DB_NAME, verify_on_open, VERIFY_MAX_BYTES)
        if read_only:
            self._conn, self._books = open_read_only(self.path, lock_timeout, verify, asked)
            return
        prepare_directory(self.path)
        from filelock import FileLock

        self._flock = FileLock(str(self.path / LOCK_NAME), timeout=lock_timeout)
        with self._write_lock():
            self._conn, self._books = open_database(
                self.path, lock_timeout, verify, asked, get_codec(None)
            )

    # -- locking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Thread lock, then the cross-process file lock (always in this order)."""
        with self._lock:
            if self._flock is None:
                yield
                return
            acquire_lock(self._flock, self._where, "open the store with read_only=True for lookups")
            try:
                yield
            finally:
                self._flock.release()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under both locks; rolled back on any error."""
        with self._write_lock():
            conn = self._live()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @property
    def touch_interval(self) -> float:
        """Seconds between LRU refreshes of one entry."""
        return self._touches.interval

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the fingerprint store is closed")
        return self._conn

    @property
    def codec(self) -> CodecSpec:
        """The store's codec."""
        return self._books.spec

    # -- the store protocol ------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> list[ChunkFingerprints | None]:
        """Fingerprints of each key, ``None`` where absent (or damaged, which also warns).

        Args:
            keys: Keys from :func:`~semtoken_rag.fingerprints.fingerprint_key`.

        Returns:
            One entry per key, in order (duplicated keys give the same object); vectors are
            float32 ``(n_words, dim)``, L2-normalised, word spans int64 ``(n_words, 2)``.
        """
        if not keys:
            return []
        wanted = list(dict.fromkeys(keys))
        found: dict[str, ChunkFingerprints] = {}
        now = time.time()
        with self._lock:
            conn = self._live()
            try:
                rows: list[Entry] = []
                last_used: dict[int, float] = {}
                for row in db.select_entries_in(conn, f"{ROW_COLUMNS}, last_used", "key", wanted):
                    rows.append(Entry.from_row(row))
                    last_used[row[0]] = row[-1]
                decoded, damaged = self._books.decode_rows(conn, rows)
            except DamagedCodebook as exc:
                warn_damage(f"a codebook of {self._where} is damaged ({exc}); lookups miss")
                decoded, damaged, rows = {}, [], []
            except sqlite3.DatabaseError as exc:
                self._read_failed(exc, "the batch counts as misses")
                decoded, damaged, rows = {}, [], []
            for r in rows:
                if r.id in decoded:
                    found[r.key] = decoded[r.id]
                    if not self.read_only:
                        self._touches.note(r.id, last_used[r.id], now)
            if damaged:
                self._remove_damaged(damaged)
            if len(self._touches) >= _TOUCH_FLUSH:
                self._flush_touches(wait=False)
            out = [found.get(k) for k in keys]
            n_hit = sum(fp is not None for fp in out)
            self.hits += n_hit
            self.misses += len(out) - n_hit
        return out

    def put_many(
        self, items: Sequence[tuple[str, ChunkFingerprints]], *, encoder_id: str = ""
    ) -> None:
        """Store fingerprints (keys already present are left as they are: content-addressed).

        The whole batch is one transaction: after a crash it is either all there or absent.

        Args:
            items: ``(key, fingerprints)`` pairs.
            encoder_id: ``cache_id`` of the encoder that produced them, recorded with a codebook
                trained on them (``add_texts`` passes it; the engine's protocol call does not).
        """
        if not items:
            return
        if self.read_only:
            if not self._warned_read_only:
                logger.warning("read-only fingerprint store %s: new entries are not stored", self)
                self._warned_read_only = True
            return
        now = time.time()
        batch = dict(items)
        try:
            with self._transaction() as conn:
                self._books.refresh(conn)  # codebooks another process trained meanwhile
                present = self._present(conn, list(batch))
                new = [(k, fp) for k, fp in batch.items() if k not in present]
                entries = self._books.encode_many(conn, new)
                insert_entries(conn, entries, now)
                added = len(entries)
                trained = False
                if added:
                    trained = self._books.maybe_train(conn, {e.dim for e in entries}, encoder_id)
                    if self.max_bytes is not None:
                        evict_lru(conn, self.max_bytes, self._touches)
                self._touches.write(conn)
            if trained:  # the float16 staging pages are free now: hand them back
                with self._write_lock():
                    db.reclaim_free_pages(self._live())
        except DamagedCodebook as exc:
            warn_damage(f"a codebook of {self._where} is damaged ({exc}); nothing was stored")
            return
        except sqlite3.DatabaseError as exc:
            if not db.is_damage(exc):
                raise StoreError(f"fingerprint store write failed: {exc}") from exc
            warn_damage(
                f"fingerprint store {self._where} is damaged ({exc}); new fingerprints were "
                "not stored. Reopen it with verify_on_open=True to quarantine and repair it"
            )
            return
        logger.debug("stored %d new of %d fingerprint entries", added, len(batch))

    @property
    def _where(self) -> str:
        return "(memory)" if self.path is None else str(self.path)

    def _read_failed(self, exc: sqlite3.DatabaseError, consequence: str) -> None:
        if not db.is_damage(exc):
            raise StoreError(f"fingerprint store read failed: {exc}") from exc
        warn_damage(
            f"fingerprint store {self._where} read failed ({exc}); {consequence}. Reopen it "
            "with verify_on_open=True to quarantine and repair it"
        )

    @staticmethod
    def _present(conn: sqlite3.Connection, keys: list[str]) -> set[str]:
        return {r[0] for r in db.select_entries_in(conn, "key", "key", keys)}

    # -- maintenance (the row changes live in semtoken_rag.store.maintenance) ----------
    def _remove_damaged(self, damaged: list[Entry]) -> None:
        if self.read_only:
            warn_damage(
                f"{len(damaged)} entries of read-only store {self._where} failed their checksum "
                "(treated as misses, left in place)"
            )
            return
        warn_damage(
            f"{len(damaged)} fingerprint entries failed their checksum (first key "
            f"{damaged[0].key[:16]}…); treated as misses and removed"
        )
        with self._transaction() as conn:
            delete_if_unchanged(conn, [(r.id, r.checksum) for r in damaged])

    def _flush_touches(self, *, wait: bool) -> None:
        """Write buffered LRU refreshes now (skipped, not waited for, when ``wait`` is False
        and another process is writing: LRU time is advisory)."""
        if not self._touches or self.read_only or self._closed:
            return
        if not wait and self._flock is not None:
            from filelock import Timeout

            try:
                self._flock.acquire(timeout=0)
            except (Timeout, OSError):
                return
            self._flock.release()
        try:
            with self._transaction() as conn:
                self._touches.write(conn)
        except (sqlite3.DatabaseError, StoreError) as exc:
            logger.debug("LRU time update skipped: %s", exc)
            self._touches.clear()

    def contains_many(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` present (no payload read, no hit/miss counting)."""
        with self._lock:
            try:
                return self._present(self._live(), list(dict.fromkeys(keys)))
            except sqlite3.DatabaseError as exc:
                self._read_failed(exc, "nothing counts as present")
                return set()

    def __len__(self) -> int:
        with self._lock:
            return int(db.read_meta(self._live())["n_entries"])

    # -- ingestion ---------------------------------------------------------------------------
    def add_texts(
        self,
        texts: Sequence[str],
        compressor_or_encoder: Any,
        *,
        batch_size: int = 64,
        progress: bool = True,
    ) -> int:
        """Fingerprint ``texts`` into the store (ingestion), skipping those already stored.

        Each batch of ``batch_size`` texts is encoded in one encoder pass and committed in one
        transaction, so an interrupted ingestion keeps every finished batch.

        Args:
            texts: Chunk texts, exactly as they will later be compressed.
            compressor_or_encoder: A :class:`~semtoken_rag.Compressor` (its encoder is used) or
                an encoder with ``cache_id`` and ``encode_texts``.
            batch_size: Texts per encoder call and per transaction.
            progress: Show a tqdm progress bar.

        Returns:
            The number of texts newly encoded.
        """
        from semtoken_rag.store.ingest import add_texts

        return add_texts(self, texts, compressor_or_encoder, batch_size, progress)

    # -- life cycle --------------------------------------------------------------------------
    def stats(self) -> StoreStats:
        """Counters of this process and sizes of the store."""
        with self._lock:
            meta = db.read_meta(self._live())
            return StoreStats(
                hits=self.hits,
                misses=self.misses,
                entries=int(meta["n_entries"]),
                vectors=int(meta["n_vectors"]),
                payload_bytes=int(meta["payload_bytes"]),
                bytes_on_disk=0 if self.path is None else files_size(self.path, DB_FILES),
                bytes_in_memory=0 if self._index is None else self._index.nbytes,
                codec=self.codec.name,
                trained=any(b.codec == self.codec.name for b in self._books.books())
                or not self.codec.trained,
                staged_entries=db.staged_entries(self._live(), self.codec.name),
            )

    def verify(self) -> list[str]:
        """Full consistency check (slow: reads every row); returns the problems found.

        A database SQLite cannot read is reported as a problem, never raised.
        """
        from semtoken_rag.store.checks import verify_database

        with self._lock:
            try:
                return verify_database(self._live(), self._books)
            except sqlite3.DatabaseError as exc:
                return [f"sqlite: {exc}"]

    def flush(self) -> None:
        """Write buffered LRU refreshes (the database needs nothing else; no index file)."""
        with self._lock:
            self._flush_touches(wait=True)

    def close(self) -> None:
        """Write buffered LRU refreshes and close the database (idempotent)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_touches(wait=True)
            finally:
                self._closed = True
                self._conn.close()
                self._index = None

    def __enter__(self) -> FingerprintStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ro = ", read_only=True" if self.read_only else ""
        return (
            f"FingerprintStore({self._where!r}, codec={self.codec.name!r}, "
            f"max_bytes={self.max_bytes}{ro})"
        )


__all__ = ["DB_NAME", "FingerprintStore", "StoreStats", "StoreWarning"]
