"""In-process fingerprint cache: the default store of a plain ``Compressor``.

A bounded LRU keyed by content hash; thread-safe.  The persistent, FAISS-backed store
(:mod:`semtoken_rag.store`) implements the same two methods.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from semtoken_rag.fingerprints import ChunkFingerprints

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUMemo(Generic[K, V]):
    """Thread-safe memo of at most ``max_size`` entries, least recently used evicted first.

    The engine memoises per-text and per-question results (segmentation, query embeddings)
    that are pure functions of their key; one small class instead of one hand-rolled
    ``OrderedDict`` per use.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)


class MemoryFingerprintCache:
    """LRU of :class:`ChunkFingerprints` bounded by bytes.

    Args:
        max_bytes: Evict least recently used entries beyond this many bytes of vectors.
    """

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, ChunkFingerprints] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get_many(self, keys: Sequence[str]) -> list[ChunkFingerprints | None]:
        out: list[ChunkFingerprints | None] = []
        with self._lock:
            for key in keys:
                fp = self._data.get(key)
                if fp is None:
                    self.misses += 1
                else:
                    self.hits += 1
                    self._data.move_to_end(key)
                out.append(fp)
        return out

    def put_many(self, items: Sequence[tuple[str, ChunkFingerprints]]) -> None:
        with self._lock:
            for key, fp in items:
                old = self._data.pop(key, None)
                if old is not None:
                    self._bytes -= old.nbytes
                self._data[key] = fp
                self._bytes += fp.nbytes
            while self._bytes > self.max_bytes and len(self._data) > 1:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= evicted.nbytes
