"""What the engine needs from its parts: an encoder, a fingerprint store, a token counter.

Structural types: the real classes, the FAISS store and test doubles satisfy them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource


class FingerprintEncoder(Protocol):
    """What the engine needs from an encoder; vectors of any scale (the engine L2-normalises
    them, :func:`~semtoken_rag.fingerprints.with_unit_vectors`)."""

    cache_id: str
    dim: int

    def encode_texts(self, texts: Sequence[str]) -> list[ChunkFingerprints]: ...

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray: ...

    def encode_query_words(self, queries: Sequence[str]) -> list[ChunkFingerprints]: ...


class FingerprintStoreProtocol(Protocol):
    """What the engine needs from a fingerprint store: fingerprints of chunk texts (``None``
    where unknown), and a place for the ones it had to encode."""

    def lookup(
        self,
        texts: Sequence[str],
        encoder_id: str,
        sources: Sequence[ChunkSource | None] | None = None,
    ) -> list[ChunkFingerprints | None]: ...

    def put(
        self, texts: Sequence[str], fingerprints: Sequence[ChunkFingerprints], encoder_id: str
    ) -> None: ...


class Counter(Protocol):
    name: str

    def count(self, text: str) -> int: ...

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray: ...
