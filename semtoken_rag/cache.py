"""In-process caches: the default fingerprint store of a plain ``Compressor``, and memos.

Both are ``cachetools.LRUCache`` objects behind a lock; the fingerprint cache is bounded in bytes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np
from cachetools import LRUCache

from semtoken_rag.config import EncoderConfig
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource, fingerprint_key
from semtoken_rag.fork_threads import ForkSafeLock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Default bound of the in-memory fingerprint cache (the config's one declaration of it).
DEFAULT_CACHE_BYTES: int = EncoderConfig.model_fields["cache_bytes"].default


class LRUMemo(Generic[K, V]):
    """Thread-safe LRU memo of pure per-text results: at most ``max_size`` entries, or, with
    ``size`` (bytes of a key and its value), ``max_size`` bytes (counts bound no long texts)."""

    def __init__(self, max_size: int, size: Callable[[K, V], int] | None = None) -> None:
        self.max_size = max_size
        self._size = size
        weigh = None if size is None else _entry_size
        self._data: LRUCache[K, tuple[int, V]] = LRUCache(maxsize=max_size, getsizeof=weigh)
        self._lock = ForkSafeLock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._data.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V) -> None:
        n = 1 if self._size is None else max(1, self._size(key, value))
        if n <= self.max_size:  # cachetools refuses an entry larger than the whole memo
            with self._lock:
                self._data[key] = (n, value)


def _entry_size(entry: tuple[int, object]) -> int:
    """The size :meth:`LRUMemo.put` measured, stored beside the value (cachetools' measure)."""
    return entry[0]


def text_and_arrays_bytes(text: str, *arrays: np.ndarray | None) -> int:
    """Bytes a text memo entry holds: its text key and its arrays."""
    return sys.getsizeof(text) + sum(a.nbytes for a in arrays if a is not None)


def _size(fp: ChunkFingerprints) -> int:
    """Bytes an entry counts for: at least 1, so a cache of ``max_bytes=0`` holds nothing."""
    return max(1, fp.nbytes)


class MemoryFingerprintCache:
    """Fingerprints this process encoded, by exact text (sources ignored), bounded in bytes: the
    store for a ``Compressor`` without a :class:`~semtoken_rag.store.FingerprintStore`.

    Args:
        max_bytes: Evict least recently used fingerprints beyond this many bytes.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._data: LRUCache[str, ChunkFingerprints] = LRUCache(maxsize=max_bytes, getsizeof=_size)
        self._lock = ForkSafeLock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        """Bytes of fingerprints held."""
        return int(self._data.currsize)

    def lookup(
        self,
        texts: Sequence[str],
        encoder_id: str,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> list[ChunkFingerprints | None]:
        """Fingerprints of each text encoded before by this process with ``encoder_id``."""
        keys = [fingerprint_key(t, encoder_id) for t in texts]
        with self._lock:  # the counters too: `+=` from two threads loses counts
            out = [self._data.get(k) for k in keys]
            n_hit = sum(fp is not None for fp in out)
            self.hits += n_hit
            self.misses += len(out) - n_hit
        return out

    def put(
        self, texts: Sequence[str], fingerprints: Sequence[ChunkFingerprints], encoder_id: str
    ) -> None:
        """Remember fingerprints, made read-only in place (lookups hand out the entry itself);
        one larger than the cache or holding NaN/infinity is not kept (as in the store)."""
        with self._lock:
            for text, fp in zip(texts, fingerprints, strict=True):
                # The size by the cache's own measure, or it refuses.
                if _size(fp) <= self.max_bytes and np.isfinite(fp.vectors).all():
                    fp.vectors.flags.writeable = False
                    fp.word_spans.flags.writeable = False
                    self._data[fingerprint_key(text, encoder_id)] = fp
