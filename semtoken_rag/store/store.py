"""``FingerprintStore``: persistent (or in-memory) content-addressed chunk fingerprints.

Design (why it is crash-safe):

* **SQLite is the only source of truth.**  Each entry row holds the key, shape, a sha256
  checksum and the raw vectors/offsets bytes.  Every change (insert, eviction, removal of a
  damaged row) is one ``BEGIN IMMEDIATE`` transaction that also updates the counters in
  ``meta`` and draws a fresh random ``token``.  SQLite's WAL makes each transaction atomic and
  durable across a process kill: a reader sees all of a batch or none of it.
* **The FAISS index is a rebuildable cache** used only for similarity *search*
  (:meth:`FingerprintStore.search`); :meth:`get_many` never reads it.  Its file records the
  token of the state it was built from and is used only when that token equals the
  database's current token and its own checksum verifies; otherwise it is rebuilt from SQLite.
  So a crash between a database commit and an index write can at worst cost a rebuild, never
  serve wrong vectors.  The file is written atomically (temp + fsync + ``os.replace``).
* **Every read is verified**: the row checksum covers key, shape and bytes; a mismatch is a
  miss, a warning, and the row is deleted (it is recomputed on the next put).
* **Damage on open** (``PRAGMA quick_check`` fails, the file is not a database, the index file
  is truncated/garbage) moves the damaged files to ``<dir>/quarantine-<timestamp>/``, warns,
  and starts again (empty database; index rebuilt from the intact database).
* **Concurrency**: a ``threading.RLock`` serialises threads of a process; a
  ``filelock.FileLock`` on ``<dir>/.lock`` serialises writers and recovery across processes
  (held only for the write itself; readers rely on WAL snapshots).

Size limit: with ``max_bytes`` the least recently used entries (``last_used``, refreshed on
hits at most every ``touch_interval`` seconds) are evicted in the same transaction as the
insert that overflowed the limit.  ``max_bytes`` counts payload bytes (vectors + offsets),
like :class:`~semtoken_rag.cache.MemoryFingerprintCache`.
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
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.store import db
from semtoken_rag.store.codec import checksum, decode_entry, encode_entry
from semtoken_rag.store.fsutil import remove_stale_temps
from semtoken_rag.store.index import SearchIndex
from semtoken_rag.store.recovery import (
    DB_FILES,
    DB_NAME,
    INDEX_NAME,
    LOCK_NAME,
    open_database,
    verify_index_file,
)
from semtoken_rag.store.search import SearchMixin
from semtoken_rag.store.types import StoreStats, StoreWarning, warn_repaired

logger = logging.getLogger(__name__)

_SQL_BATCH = 500  # keys per "IN (...)" query (SQLite's variable limit is >= 999)
_USE_GPU = ("auto", "never", "always")


class FingerprintStore(SearchMixin):
    """Content-addressed store of chunk fingerprints (SQLite + FAISS).

    Args:
        path: Directory of a persistent store (created if missing), or ``None`` for a store
            that lives in memory only.
        max_bytes: Evict least recently used entries beyond this many payload bytes.
        use_gpu: ``auto``/``never``/``always`` for the search index (needs faiss-gpu + CUDA).
        verify_on_open: Run ``PRAGMA quick_check`` and verify the index file when opening
            (reads the whole store once; disable for very large stores opened often).
        touch_interval: Hits refresh an entry's LRU time at most this often (seconds); fewer
            writes on hot entries.
        lock_timeout: Seconds to wait for another process's write before :class:`StoreError`.

    Example:
        >>> with FingerprintStore("fp-store") as store:  # doctest: +SKIP
        ...     comp = Compressor(store=store)
        ...     store.add_texts(chunks, comp)
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        max_bytes: int | None = None,
        use_gpu: str = "auto",
        verify_on_open: bool = True,
        touch_interval: float = 1.0,
        lock_timeout: float = 600.0,
    ) -> None:
        if use_gpu not in _USE_GPU:
            raise StoreError(f"use_gpu must be one of {_USE_GPU}, got {use_gpu!r}")
        if max_bytes is not None and max_bytes <= 0:
            raise StoreError(f"max_bytes must be positive, got {max_bytes}")
        self.path = None if path is None else Path(path)
        self.max_bytes = max_bytes
        self.use_gpu = use_gpu
        self.touch_interval = touch_interval
        self.hits = 0
        self.misses = 0
        self._lock = threading.RLock()
        self._index: SearchIndex | None = None
        self._index_file_token: str | None = None
        self._closed = False
        self._flock: Any = None
        if self.path is None:
            self._conn = db.connect(None, lock_timeout)
            db.init_schema(self._conn)
            return
        from filelock import FileLock

        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {self.path}: {exc}") from exc
        if not self.path.is_dir():
            raise StoreError(f"{self.path} is not a directory")
        self._flock = FileLock(str(self.path / LOCK_NAME), timeout=lock_timeout)
        with self._write_lock():
            self._conn = open_database(self.path, lock_timeout, verify_on_open)
            remove_stale_temps(self.path, INDEX_NAME)
            if verify_on_open:
                verify_index_file(self.path)

    # -- locking -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Thread lock, then the cross-process file lock (always in this order)."""
        with self._lock:
            if self._flock is None:
                yield
                return
            from filelock import Timeout

            try:
                self._flock.acquire()
            except Timeout as exc:
                raise StoreError(
                    f"timed out waiting for the lock of {self.path} (another process writing)"
                ) from exc
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

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the fingerprint store is closed")
        return self._conn

    # -- the store protocol ------------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> list[ChunkFingerprints | None]:
        """Fingerprints of each key, ``None`` where absent (or damaged, which also warns).

        Args:
            keys: Keys from :func:`~semtoken_rag.fingerprints.fingerprint_key`.

        Returns:
            One entry per key, in order (duplicated keys give the same object).
        """
        if not keys:
            return []
        wanted = list(dict.fromkeys(keys))
        found: dict[str, ChunkFingerprints] = {}
        damaged: list[tuple[int, bytes, str]] = []
        stale: list[int] = []
        now = time.time()
        with self._lock:
            conn = self._live()
            try:
                for lo in range(0, len(wanted), _SQL_BATCH):
                    part = wanted[lo : lo + _SQL_BATCH]
                    rows = conn.execute(
                        "SELECT id, key, n_words, dim, checksum, vectors, spans, last_used "
                        f"FROM entries WHERE key IN ({','.join('?' * len(part))})",
                        part,
                    ).fetchall()
                    for eid, key, n, d, csum, vec, spans, last in rows:
                        if checksum(key, n, d, vec, spans) != csum:
                            damaged.append((eid, csum, key))
                            continue
                        try:
                            found[key] = decode_entry(n, d, vec, spans)
                        except ValueError:
                            damaged.append((eid, csum, key))
                            continue
                        if now - last >= self.touch_interval:
                            stale.append(eid)
            except sqlite3.DatabaseError as exc:
                if not db.is_damage(exc):
                    raise StoreError(f"fingerprint store read failed: {exc}") from exc
                warn_repaired(f"fingerprint store read failed ({exc}); the batch counts as misses")
                found = {}
            if damaged:
                self._remove_damaged(damaged)
            if stale:
                self._touch(stale, now)
            out = [found.get(k) for k in keys]
            n_hit = sum(fp is not None for fp in out)
            self.hits += n_hit
            self.misses += len(out) - n_hit
        return out

    def put_many(self, items: Sequence[tuple[str, ChunkFingerprints]]) -> None:
        """Store fingerprints (keys already present are left as they are: content-addressed).

        The whole batch is one transaction: after a crash it is either all there or absent.
        """
        if not items:
            return
        now = time.time()
        records = []
        for key, fp in dict(items).items():
            vec, spans = encode_entry(fp)
            records.append(
                (
                    key,
                    fp.n_words,
                    fp.dim,
                    len(vec) + len(spans),
                    now,
                    checksum(key, fp.n_words, fp.dim, vec, spans),
                    vec,
                    spans,
                )
            )
        with self._transaction() as conn:
            added = vectors = payload = 0
            for rec in records:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO entries"
                    "(key, n_words, dim, nbytes, last_used, checksum, vectors, spans) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rec,
                )
                if cur.rowcount == 1:
                    added += 1
                    vectors += rec[1]
                    payload += rec[3]
            if added:
                db.bump(conn, entries=added, vectors=vectors, payload=payload)
                self._evict(conn)
        logger.debug("stored %d new of %d fingerprint entries", added, len(records))

    # -- maintenance -------------------------------------------------------------------------
    def _evict(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: drop LRU entries until the payload fits ``max_bytes``."""
        if self.max_bytes is None:
            return
        total = int(db.read_meta(conn)["payload_bytes"])
        if total <= self.max_bytes:
            return
        remaining = int(db.read_meta(conn)["n_entries"])
        doomed: list[int] = []
        freed = vectors = 0
        for eid, nbytes, n in conn.execute(
            "SELECT id, nbytes, n_words FROM entries ORDER BY last_used, id"
        ):
            if total - freed <= self.max_bytes or remaining - len(doomed) <= 1:
                break
            doomed.append(eid)
            freed += nbytes
            vectors += n
        conn.executemany("DELETE FROM entries WHERE id = ?", [(e,) for e in doomed])
        db.bump(conn, entries=-len(doomed), vectors=-vectors, payload=-freed, deletions=1)
        logger.info(
            "evicted %d entries (%d bytes) to stay under %d", len(doomed), freed, self.max_bytes
        )

    def _remove_damaged(self, damaged: list[tuple[int, bytes, str]]) -> None:
        warn_repaired(
            f"{len(damaged)} fingerprint entries failed their checksum (first key "
            f"{damaged[0][2][:16]}…); treated as misses and removed"
        )
        with self._transaction() as conn:
            gone = vectors = payload = 0
            for eid, csum, _ in damaged:
                row = conn.execute(
                    "SELECT n_words, nbytes FROM entries WHERE id = ? AND checksum = ?",
                    (eid, csum),
                ).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM entries WHERE id = ?", (eid,))
                    gone += 1
                    vectors += row[0]
                    payload += row[1]
            if gone:
                db.bump(conn, entries=-gone, vectors=-vectors, payload=-payload, deletions=1)

    def _touch(self, ids: list[int], now: float) -> None:
        """Refresh LRU times; advisory, so a busy database just skips it."""
        if self.max_bytes is None and self.path is None:
            return
        if self._flock is not None:
            from filelock import Timeout

            try:
                self._flock.acquire(timeout=0)
            except Timeout:
                logger.debug("LRU time update skipped: another process is writing")
                return
        try:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE entries SET last_used = ? WHERE id = ?", [(now, i) for i in ids]
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            logger.debug("LRU time update skipped: %s", exc)
        finally:
            if self._flock is not None:
                self._flock.release()

    def contains_many(self, keys: Sequence[str]) -> set[str]:
        """The subset of ``keys`` present (no payload read, no hit/miss counting)."""
        present: set[str] = set()
        wanted = list(dict.fromkeys(keys))
        with self._lock:
            conn = self._live()
            for lo in range(0, len(wanted), _SQL_BATCH):
                part = wanted[lo : lo + _SQL_BATCH]
                present.update(
                    r[0]
                    for r in conn.execute(
                        f"SELECT key FROM entries WHERE key IN ({','.join('?' * len(part))})",
                        part,
                    )
                )
        return present

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
        enc = (
            compressor_or_encoder
            if hasattr(compressor_or_encoder, "encode_texts")
            else compressor_or_encoder.encoder
        )
        by_key = {fingerprint_key(t, enc.cache_id): t for t in texts}
        present = self.contains_many(list(by_key))
        todo = [(k, t) for k, t in by_key.items() if k not in present]
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc="fingerprints", unit="chunk", disable=not progress) as bar:
            for lo in range(0, len(todo), max(1, batch_size)):
                batch = todo[lo : lo + batch_size]
                fps = enc.encode_texts([t for _, t in batch])
                self.put_many([(k, fp) for (k, _), fp in zip(batch, fps, strict=True)])
                bar.update(len(batch))
        logger.info("ingested %d new chunks (%d already stored)", len(todo), len(present))
        return len(todo)

    # -- life cycle --------------------------------------------------------------------------
    def stats(self) -> StoreStats:
        """Counters of this process and sizes of the store."""
        with self._lock:
            meta = db.read_meta(self._live())
            on_disk = 0
            if self.path is not None:
                for name in (*DB_FILES, INDEX_NAME):
                    with contextlib.suppress(OSError):
                        on_disk += (self.path / name).stat().st_size
            return StoreStats(
                hits=self.hits,
                misses=self.misses,
                entries=int(meta["n_entries"]),
                vectors=int(meta["n_vectors"]),
                payload_bytes=int(meta["payload_bytes"]),
                bytes_on_disk=on_disk,
                bytes_in_memory=0 if self._index is None else self._index.nbytes,
            )

    def verify(self) -> list[str]:
        """Full consistency check (slow: reads every row); returns the problems found."""
        problems: list[str] = []
        with self._lock:
            conn = self._live()
            problem = db.health_problem(conn)
            if problem:
                problems.append(f"sqlite: {problem}")
            conn.execute("BEGIN")
            try:
                meta = db.read_meta(conn)
                count = vecs = payload = 0
                for key, n, d, csum, vec, spans, nb in conn.execute(
                    "SELECT key, n_words, dim, checksum, vectors, spans, nbytes FROM entries"
                ):
                    count += 1
                    vecs += n
                    payload += nb
                    if checksum(key, n, d, vec, spans) != csum:
                        problems.append(f"checksum mismatch: {key}")
            finally:
                conn.execute("COMMIT")
            for name, value in (
                ("n_entries", count),
                ("n_vectors", vecs),
                ("payload_bytes", payload),
            ):
                if meta[name] != value:
                    problems.append(f"meta {name}={meta[name]} but rows say {value}")
        return problems

    def close(self) -> None:
        """Persist the search index and close the database (idempotent)."""
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            except (OSError, StoreError) as exc:
                logger.warning("could not persist the search index: %s", exc)
            self._closed = True
            self._conn.close()
            self._index = None

    def __enter__(self) -> FingerprintStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self.path is None else str(self.path)
        return f"FingerprintStore({where!r}, max_bytes={self.max_bytes})"


__all__ = ["DB_NAME", "INDEX_NAME", "FingerprintStore", "StoreStats", "StoreWarning"]
