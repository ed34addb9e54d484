"""What the engine needs from its parts: an encoder, a fingerprint store, a token counter.

Structural types (``typing.Protocol``): the real classes, the FAISS store and test doubles all
satisfy them without inheriting from anything here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from semtoken_rag.fingerprints import ChunkFingerprints


class FingerprintEncoder(Protocol):
    """What the engine needs from an encoder (the real one or a test double)."""

    cache_id: str
    dim: int

    def encode_texts(self, texts: Sequence[str]) -> list[ChunkFingerprints]: ...

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray: ...

    def encode_query_words(self, queries: Sequence[str]) -> list[ChunkFingerprints]: ...


class FingerprintStoreProtocol(Protocol):
    """What the engine needs from a fingerprint store."""

    def get_many(self, keys: Sequence[str]) -> list[ChunkFingerprints | None]: ...

    def put_many(self, items: Sequence[tuple[str, ChunkFingerprints]]) -> None: ...


class Counter(Protocol):
    name: str

    def count(self, text: str) -> int: ...

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray: ...
