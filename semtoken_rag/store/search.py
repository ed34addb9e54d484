"""Similarity search over stored fingerprints: the FAISS side of :class:`FingerprintStore`.

A mixin so the store module stays about storage; see :mod:`semtoken_rag.store.index` for why
the index can never disagree with the database it claims to describe.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_rag.store import db
from semtoken_rag.store.codec import checksum, decode_entry
from semtoken_rag.store.index import DamagedIndex, SearchIndex, read_index_file
from semtoken_rag.store.recovery import INDEX_NAME, quarantine_index

logger = logging.getLogger("semtoken_rag.store")
_SQL_BATCH = 500


class SearchMixin:
    """``search`` and ``flush`` of :class:`~semtoken_rag.store.FingerprintStore`."""

    path: Path | None
    use_gpu: str
    _closed: bool
    _lock: threading.RLock
    _index: SearchIndex | None
    _index_file_token: str | None

    def _live(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _write_lock(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def search(
        self, queries: np.ndarray, k: int = 10
    ) -> tuple[np.ndarray, list[list[tuple[str, int] | None]]]:
        """Nearest stored word fingerprints of each query vector (exact inner product).

        Args:
            queries: ``(q, d) float32`` L2-normalised vectors; only entries of dimension ``d``
                are searched.
            k: Neighbours per query.

        Returns:
            ``(scores (q, k) float32, hits)`` where ``hits[i][j]`` is ``(key, word_index)`` or
            ``None`` where fewer than ``k`` vectors exist.
        """
        q = np.asarray(queries, dtype=np.float32)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        with self._lock:
            index = self._search_index(int(q.shape[1]))
            scores, pos = index.search(q, k)
            ids = sorted({int(index.entry_ids[p]) for p in pos.ravel() if p >= 0})
            keys: dict[int, str] = {}
            for lo in range(0, len(ids), _SQL_BATCH):
                part = ids[lo : lo + _SQL_BATCH]
                keys.update(
                    self._live()
                    .execute(
                        f"SELECT id, key FROM entries WHERE id IN ({','.join('?' * len(part))})",
                        part,
                    )
                    .fetchall()
                )
            hits = [
                [
                    (keys[int(index.entry_ids[p])], int(index.word_idx[p]))
                    if p >= 0 and int(index.entry_ids[p]) in keys
                    else None
                    for p in row
                ]
                for row in pos
            ]
        return scores, hits

    def _search_index(self, dim: int) -> SearchIndex:
        """The search index, brought up to date with the database (lazily, incrementally)."""
        conn = self._live()
        conn.execute("BEGIN")  # one read snapshot for the meta and the rows
        try:
            meta = db.read_meta(conn)
            idx = self._index
            if idx is None or idx.dim != dim:
                idx = self._load_index_file(dim, meta)
            if idx is not None and idx.token == meta["token"]:
                pass
            elif idx is not None and idx.deletions == meta["deletions"]:
                self._append_rows(conn, idx, dim)
            else:
                idx = SearchIndex(dim=dim, use_gpu=self.use_gpu)
                self._append_rows(conn, idx, dim)
            idx.token = str(meta["token"])
            idx.deletions = int(meta["deletions"])
            idx.use_gpu = self.use_gpu
        finally:
            conn.execute("COMMIT")
        self._index = idx
        return idx

    def _load_index_file(self, dim: int, meta: dict[str, int | str]) -> SearchIndex | None:
        """The persisted index, only if it describes exactly the current database state."""
        if self.path is None or not (self.path / INDEX_NAME).exists():
            return None
        try:
            idx = read_index_file(self.path / INDEX_NAME)
        except (DamagedIndex, OSError) as exc:
            with self._write_lock():
                quarantine_index(self.path, str(exc))
            return None
        if idx is None or idx.dim != dim or idx.token != meta["token"]:
            logger.info("search index file is stale; rebuilding from the database")
            return None
        self._index_file_token = idx.token
        return idx

    def _append_rows(self, conn: sqlite3.Connection, idx: SearchIndex, dim: int) -> None:
        """Add entries newer than ``idx.max_entry_id`` (ids grow with commit order)."""
        rows = conn.execute(
            "SELECT id, key, n_words, dim, checksum, vectors, spans FROM entries "
            "WHERE id > ? AND dim = ? ORDER BY id",
            (idx.max_entry_id, dim),
        )
        for eid, key, n, d, csum, vec, spans in rows:
            if checksum(key, n, d, vec, spans) == csum:
                idx.add(eid, decode_entry(n, d, vec, spans).vectors)
            else:
                logger.warning("entry %s failed its checksum; left out of the index", key[:16])

    def flush(self) -> None:
        """Persist the search index (if one was built and changed); the database needs none."""
        with self._write_lock():
            idx = self._index
            if self.path is None or idx is None or self._closed:
                return
            idx = self._search_index(idx.dim)
            if idx.token != self._index_file_token:
                idx.save(self.path / INDEX_NAME)
                self._index_file_token = idx.token
