"""Similarity search over stored fingerprints: the FAISS side of :class:`FingerprintStore`.

A mixin so the store module stays about storage; see :mod:`semtoken_rag.store.index` for what
the index holds (the stored codes, in memory, built on first use) and why it is exact.
"""

from __future__ import annotations

import sqlite3
import threading

import numpy as np

from semtoken_rag.errors import StoreError
from semtoken_rag.store import db
from semtoken_rag.store.codebooks import ROW_COLUMNS, Codebooks, DamagedCodebook, Entry
from semtoken_rag.store.gpu import resolve_use_gpu
from semtoken_rag.store.index import CodeIndex


class SearchMixin:
    """``search`` of :class:`~semtoken_rag.store.FingerprintStore`."""

    _lock: threading.RLock
    _index: CodeIndex | None
    _books: Codebooks
    use_gpu: str

    def _live(self) -> sqlite3.Connection:
        raise NotImplementedError

    def search(
        self, queries: np.ndarray, k: int = 10
    ) -> tuple[np.ndarray, list[list[tuple[str, int] | None]]]:
        """Nearest stored word fingerprints of each query vector (exact inner product over the
        decoded vectors, i.e. the vectors :meth:`get_many` returns).

        Args:
            queries: ``(q, d) float32`` L2-normalised vectors; only entries of dimension ``d``
                are searched.
            k: Neighbours per query (any size; on a GPU, ``k > 2048`` runs on the CPU).

        Returns:
            ``(scores (q, k) float32, hits)`` where ``hits[i][j]`` is ``(key, word_index)`` or
            ``None`` where fewer than ``k`` vectors exist.

        Raises:
            StoreError: ``k < 1``, or the database cannot be read (damaged or unreadable).
        """
        if int(k) < 1:
            raise StoreError(f"k must be at least 1, got {k}")
        q = np.asarray(queries, dtype=np.float32)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        with self._lock:
            try:
                index = self._search_index(int(q.shape[1]))
                on_gpu = resolve_use_gpu(self.use_gpu)
                scores, entry_ids, words = index.search(q, int(k), self._books, on_gpu=on_gpu)
                keys = self._keys(sorted({int(e) for e in entry_ids.ravel() if e >= 0}))
            except (sqlite3.DatabaseError, DamagedCodebook) as exc:
                raise StoreError(f"fingerprint store search failed: {exc}") from exc
        hits = [
            [
                (keys[int(e)], int(w)) if e >= 0 and int(e) in keys else None
                for e, w in zip(erow, wrow, strict=True)
            ]
            for erow, wrow in zip(entry_ids, words, strict=True)
        ]
        return scores, hits

    def _keys(self, ids: list[int]) -> dict[int, str]:
        return dict(db.select_entries_in(self._live(), "id, key", "id", ids))

    def _search_index(self, dim: int) -> CodeIndex:
        """The index, brought up to date with the database (lazily, incrementally)."""
        conn = self._live()
        conn.execute("BEGIN")  # one read snapshot for the meta and the rows
        try:
            meta = db.read_meta(conn)
            idx = self._index
            if idx is None or idx.dim != dim or idx.deletions != meta["deletions"]:
                idx = CodeIndex(dim=dim)
            if idx.token != meta["token"]:
                self._append_rows(conn, idx, dim)
            idx.token = str(meta["token"])
            idx.deletions = int(meta["deletions"])
        finally:
            conn.execute("COMMIT")
        self._index = idx
        return idx

    def _append_rows(self, conn: sqlite3.Connection, idx: CodeIndex, dim: int) -> None:
        """Add the codes of entries newer than ``idx.max_entry_id`` (ids grow with commits)."""
        rows = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM entries WHERE id > ? AND dim = ? ORDER BY id",
            (idx.max_entry_id, dim),
        )
        for raw in rows:
            r = Entry.from_row(raw)
            self._books.ensure(conn, [r])
            codec = self._books.check(r)
            if codec is None:  # damaged: left out (get_many reports and removes it)
                idx.max_entry_id = max(idx.max_entry_id, r.id)
                continue
            idx.add(r.id, r.codebook, codec.code_size, r.n_words, r.vectors)
