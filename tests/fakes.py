"""A deterministic fake encoder for fast unit tests of the engine (no model, no torch).

Each word's fingerprint is a fixed pseudo-random unit vector derived from the lower-cased word
(hash-seeded), lightly mixed with its neighbours so context matters.  Same text, same vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from semtoken_rag.core.pooling import l2_normalize
from semtoken_rag.core.segment import find_words
from semtoken_rag.fingerprints import ChunkFingerprints


def _word_vec(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(
        hashlib.sha256(word.lower().encode("utf-8", "surrogatepass")).digest()[:8], "little"
    )
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class FakeEncoder:
    """Implements the ``FingerprintEncoder`` protocol without a model."""

    def __init__(self, dim: int = 32) -> None:
        self.dim = dim
        self.cache_id = f"fake|dim{dim}"
        self.calls = 0

    def _vectors(self, text: str, spans: np.ndarray) -> np.ndarray:
        if len(spans) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        base = np.stack(
            [_word_vec(text[s:e].strip(".,;:!?\"'()"), self.dim) for s, e in spans.tolist()]
        )
        ctx = base.copy()
        ctx[1:] += 0.3 * base[:-1]
        ctx[:-1] += 0.3 * base[1:]
        return l2_normalize(ctx)

    def encode_texts(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        self.calls += len(texts)
        return self.encode_query_words(texts)

    def encode_query_words(self, texts: Sequence[str]) -> list[ChunkFingerprints]:
        out = []
        for t in texts:
            spans = find_words(t)
            out.append(ChunkFingerprints(self._vectors(t, spans), spans))
        return out

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        rows = []
        for q in queries:
            spans = find_words(q)
            v = self._vectors(q, spans)
            rows.append(v.mean(axis=0) if len(v) else np.zeros(self.dim, np.float32))
        return l2_normalize(np.asarray(rows, dtype=np.float32).reshape(len(queries), self.dim))


class WhitespaceCounter:
    """Counts one token per word: budgets in words (for fast unit tests)."""

    name = "whitespace"

    def count(self, text: str) -> int:
        return len(find_words(text))

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        return np.ones(len(word_spans), dtype=np.int64)
