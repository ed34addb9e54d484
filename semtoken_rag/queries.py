"""Query embeddings for relevance, memoised per question.

How a query is embedded depends on ``SemTokenConfig.relevance`` (late interaction: its content
words' fingerprints; pooled: one sentence vector); the LRU makes a repeated question cost no
encoder pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from semtoken_rag.cache import LRUMemo, text_and_arrays_bytes
from semtoken_rag.core.pooling import unit_rows
from semtoken_rag.core.scoring import content_word_mask
from semtoken_rag.errors import InvalidInputError, NonFiniteFingerprintsError
from semtoken_rag.fingerprints import REAL_KINDS
from semtoken_rag.inputs import model_text
from semtoken_rag.protocols import FingerprintEncoder


def query_word_fingerprints(encoder: FingerprintEncoder, queries: list[str]) -> list[np.ndarray]:
    """``(Q, d)`` fingerprints of each query's content words (all its words if none is content);
    ``(0, d)`` for a query without words, which the core treats as no query."""
    out = []
    for q, fp in zip(queries, encoder.encode_query_words(queries), strict=True):
        mask = content_word_mask([q[a:b] for a, b in fp.word_spans.tolist()])
        out.append(fp.vectors[mask] if mask.any() else fp.vectors)
    return out


#: Words asking for a summary, not a fact (English; else set ``objective="coverage"``).
_SUMMARY_REQUEST = re.compile(
    r"\b(?:summar\w*|overview|recap\w*|gist|synopsis|outline|abstract|tl;?dr|"
    r"(?:main|key|important)\s+(?:points?|ideas?|topics?|takeaways?|findings?|issues?)|"
    r"highlights?|what\s+(?:is|was)\s+(?:this|it|the)(?:\s+\w+)?\s+about)\b",
    re.IGNORECASE,
)


def is_summary_request(query: str | None) -> bool:
    """Whether ``query`` asks for a summary ("What are the key points?"), where relevance carries
    little signal and the ``auto`` objective buys coverage instead."""
    return bool(query) and _SUMMARY_REQUEST.search(query or "") is not None


#: ``SemTokenConfig.relevance`` -> how queries are embedded (pooled: one ``(d,)`` vector each).
QUERY_ENCODERS: dict[str, Callable[[FingerprintEncoder, list[str]], list[np.ndarray]]] = {
    "pooled": lambda encoder, queries: list(encoder.encode_queries(queries)),
    "late_interaction": query_word_fingerprints,
}


#: Bytes of queries and embeddings remembered (a short question's: about 10 kB).
QUERY_CACHE_BYTES = 32 << 20


class QueryVectors:
    """Thread-safe LRU of query embeddings for one encoder and relevance measure.

    Args:
        relevance: A key of :data:`QUERY_ENCODERS`.
        max_bytes: Bytes of questions and embeddings remembered (bytes, not entries: long
            queries are large).
    """

    def __init__(self, relevance: str, max_bytes: int = QUERY_CACHE_BYTES) -> None:
        self._embed = QUERY_ENCODERS[relevance]
        self._memo: LRUMemo[str, np.ndarray] = LRUMemo(max_bytes, text_and_arrays_bytes)

    def get(self, encoder: FingerprintEncoder, queries: Sequence[str]) -> dict[str, np.ndarray]:
        """Embeddings of ``queries`` (each encoded at most once while remembered).

        Raises:
            NonFiniteFingerprintsError: the encoder produced NaN or infinity for a question.
            InvalidInputError: it produced vectors that are not real numbers.
        """
        found = {q: self._memo.get(q) for q in dict.fromkeys(queries)}
        out = {q: v for q, v in found.items() if v is not None}
        todo = [q for q, v in found.items() if v is None]
        if todo:
            clean = [model_text(q) for q in todo]  # what the tokenizer can take (same offsets)
            # Paired in full first (strict), so a short answer memoises nothing.
            for q, answer in list(zip(todo, self._embed(encoder, clean), strict=True)):
                vec = np.asarray(answer)
                if vec.dtype.kind not in REAL_KINDS:
                    raise InvalidInputError(
                        f"the encoder produced {vec.dtype} vectors for the question "
                        f"{q[:40]!r}; they must be real numbers"
                    )
                if not np.isfinite(vec).all():
                    raise NonFiniteFingerprintsError(
                        f"the encoder produced NaN or infinite vectors for the question "
                        f"{q[:40]!r}; nothing was compressed ({NonFiniteFingerprintsError.HINT})"
                    )
                if vec.ndim:  # normalised as the chunks' are (with_unit_vectors)
                    vec = unit_rows(vec)
                out[q] = vec
                if _memoisable(vec, encoder.dim):
                    self._memo.put(q, vec)
        return out


def _memoisable(vec: np.ndarray, dim: int) -> bool:
    """Whether a query embedding may be remembered: of the encoder's dimension (a bad one
    remembered would fail every later call of the question; this call still uses it)."""
    return np.shape(vec)[-1:] == (dim,)
