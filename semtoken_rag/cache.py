"""In-process caches: the default fingerprint store of a plain ``Compressor``, and memos.

Both are ``cachetools.LRUCache`` objects behind a lock (cachetools caches are not thread-safe
on their own).  The fingerprint cache is bounded in *bytes* (``cache_bytes`` of the config),
so a long-running process holds at most that much fingerprint memory.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from cachetools import LRUCache

from semtoken_rag.config import EncoderConfig
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource, fingerprint_key

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Default bound of the in-memory fingerprint cache (the config's one declaration of it).
DEFAULT_CACHE_BYTES: int = EncoderConfig.model_fields["cache_bytes"].default


class LRUMemo(Generic[K, V]):
    """Thread-safe memo of at most ``max_size`` entries, least recently used evicted first.

    The engine memoises per-text and per-question results (segmentation, query embeddings)
    that are pure functions of their key.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._data: LRUCache[K, V] = LRUCache(maxsize=max_size)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        if self.max_size > 0:  # cachetools refuses any entry in a cache of size 0
            with self._lock:
                self._data[key] = value


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
        with self._lock:
            out = [self._data.get(k) for k in keys]
        n_hit = sum(fp is not None for fp in out)
        self.hits += n_hit
        self.misses += len(out) - n_hit
        return out

    def put(
        self, texts: Sequence[str], fingerprints: Sequence[ChunkFingerprints], encoder_id: str
    ) -> None:
        """Remember fingerprints (one larger than the whole cache is not kept)."""
        with self._lock:
            for text, fp in zip(texts, fingerprints, strict=True):
                if _size(fp) <= self.max_bytes:  # the cache's own measure, or it refuses
                    self._data[fingerprint_key(text, encoder_id)] = fp
