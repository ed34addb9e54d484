"""In-process caches: the default fingerprint store of a plain ``Compressor``, and memos.

Both are ``cachetools.LRUCache`` objects behind a lock (cachetools caches are not thread-safe
on their own).  The fingerprint cache is bounded in *bytes* (``cache_bytes`` of the config),
so a long-running process holds at most that much fingerprint memory.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np
from cachetools import LRUCache

from semtoken_rag.config import EncoderConfig
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource, fingerprint_key

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Default bound of the in-memory fingerprint cache (the config's one declaration of it).
DEFAULT_CACHE_BYTES: int = EncoderConfig.model_fields["cache_bytes"].default


class LRUMemo(Generic[K, V]):
    """Thread-safe memo, least recently used evicted first: at most ``max_size`` entries, or,
    with ``size`` (bytes of a key and its value), at most ``max_size`` bytes.

    The engine memoises per-text and per-question results (segmentation, token costs, query
    embeddings) that are pure functions of their key.  Why bytes for chunk texts: a count
    bounds nothing when chunks are long (2,048 prepared 18k-word chunks held 1.4 GB).
    """

    def __init__(self, max_size: int, size: Callable[[K, V], int] | None = None) -> None:
        self.max_size = max_size
        self._size = size
        weigh = None if size is None else _entry_size
        self._data: LRUCache[K, tuple[int, V]] = LRUCache(maxsize=max_size, getsizeof=weigh)
        self._lock = threading.Lock()

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
    """Bytes a memo entry holds: its text key and its arrays (what ``size`` of a text memo
    returns)."""
    return sys.getsizeof(text) + sum(a.nbytes for a in arrays if a is not None)


def _size(fp: ChunkFingerprints) -> int:
    """Bytes an entry counts for: at least 1, so that even an empty chunk's fingerprints take
    room (a cache of ``max_bytes=0`` then holds nothing, as documented, instead of holding
    empty entries forever)."""
    return max(1, fp.nbytes)


class MemoryFingerprintCache:
    """Fingerprints of chunk texts this process encoded, by exact text, bounded in bytes.

    Implements the engine's store protocol (``lookup`` / ``put``) for a ``Compressor`` without
    a :class:`~semtoken_rag.store.FingerprintStore`: a chunk is encoded once per process.  Only
    an identical text hits (no document slicing; sources are ignored).

    Args:
        max_bytes: Evict least recently used fingerprints beyond this many bytes.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._data: LRUCache[str, ChunkFingerprints] = LRUCache(maxsize=max_bytes, getsizeof=_size)
        self._lock = threading.Lock()
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
        """Remember fingerprints (one larger than the whole cache, or holding NaN or infinity,
        is not kept: it would be served to every later call, as the store refuses it too).

        Their arrays are made read-only (in place, no copy): a lookup hands out the entry
        itself, and a caller writing into it changed every later result for that text."""
        with self._lock:
            for text, fp in zip(texts, fingerprints, strict=True):
                # The size by the cache's own measure, or it refuses.
                if _size(fp) <= self.max_bytes and np.isfinite(fp.vectors).all():
                    fp.vectors.flags.writeable = False
                    fp.word_spans.flags.writeable = False
                    self._data[fingerprint_key(text, encoder_id)] = fp
