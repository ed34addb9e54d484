"""The value the encoder produces and the store keeps: word fingerprints of one chunk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.pooling import unit_rows

#: Bumped whenever the meaning of stored fingerprints changes (segmentation, pooling, norm).
FINGERPRINT_FORMAT_VERSION = 1
#: numpy kinds of encoder vectors the engine and store take: floats and integers (no bool etc.).
REAL_KINDS = "fiu"


@dataclass(frozen=True, eq=False)
class ChunkFingerprints:
    """Contextual fingerprints of every word of one chunk.

    Attributes:
        vectors: ``(n_words, dim) float32``, L2-normalised (token states mean-pooled per word).
        word_spans: ``(n_words, 2) int64`` ``[start, end)`` of each word in the chunk text (the
            words of :func:`semtoken_rag.core.segment.find_words`).
    """

    vectors: np.ndarray
    word_spans: np.ndarray

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.word_spans.shape != (self.vectors.shape[0], 2):
            raise ValueError(
                f"fingerprint shapes disagree: vectors {self.vectors.shape}, "
                f"word_spans {self.word_spans.shape}"
            )

    @property
    def n_words(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.word_spans.nbytes)


def with_unit_vectors(fp: ChunkFingerprints) -> ChunkFingerprints:
    """``fp`` with L2-normalised vectors (:func:`unit_rows`); ``fp`` itself if they already are."""
    vectors = unit_rows(fp.vectors)
    return fp if vectors is fp.vectors else ChunkFingerprints(vectors, fp.word_spans)


#: Largest ``ChunkSource.start`` (an SQLite integer: the store binds it in its queries).
MAX_START = 2**63 - 1


@dataclass(frozen=True)
class ChunkSource:
    """Where a retrieved chunk came from, per its framework: a hint narrowing the store's search
    by content (and picking the verified copy at ``start``); a wrong one costs only time.

    Attributes:
        document: The source document's name as ingested: LangChain ``metadata["source"]``
            (or the ``Document.id`` given at ingestion), LlamaIndex ``ref_doc_id``, a file path.
        start: Character offset in that document (LangChain ``start_index``, LlamaIndex
            ``start_char_idx``).
    """

    document: str | None = None
    start: int | None = None


def fingerprint_key(text: str, encoder_cache_id: str) -> str:
    """Content key (64 hex): sha256 of the text as encoded, encoder ``cache_id`` and version."""
    h = hashlib.sha256()
    head = f"semtoken-fp-v{FINGERPRINT_FORMAT_VERSION}\0{encoder_cache_id}\0"
    h.update(head.encode("utf-8", "surrogatepass"))  # any str id keys the in-memory cache
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
