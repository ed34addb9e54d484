"""The value the encoder produces and the store keeps: word fingerprints of one chunk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from semtoken_rag.core.pooling import unit_rows

#: Bumped whenever the meaning of stored fingerprints changes (segmentation, pooling, norm).
FINGERPRINT_FORMAT_VERSION = 1
#: numpy kinds of the vectors the engine and the store take from an encoder: floats and
#: integers (not bool, complex nor object arrays).
REAL_KINDS = "fiu"


@dataclass(frozen=True, eq=False)
class ChunkFingerprints:
    """Contextual fingerprints of every word of one chunk.

    Attributes:
        vectors: ``(n_words, dim) float32``, L2-normalised word fingerprints (token states of
            the encoder mean-pooled over each word's sub-word tokens).
        word_spans: ``(n_words, 2) int64`` character offsets ``[start, end)`` of each word in the
            chunk text (the words of :func:`semtoken_rag.core.segment.find_words`).
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
    """``fp`` with L2-normalised vectors, as this class documents them (:func:`unit_rows`):
    how the engine takes an encoder's output, whatever the scale of a custom encoder's
    vectors; ``fp`` itself where they already are (the packaged encoder's)."""
    vectors = unit_rows(fp.vectors)
    return fp if vectors is fp.vectors else ChunkFingerprints(vectors, fp.word_spans)


#: Largest ``ChunkSource.start`` (an SQLite integer: the store binds it in its queries).
MAX_START = 2**63 - 1


@dataclass(frozen=True)
class ChunkSource:
    """Where a retrieved chunk came from, as its framework reports it: a hint for the store.

    A fingerprint store finds a chunk inside the documents it holds by the chunk's content
    alone; a source narrows the search (and picks, among verified copies, the one at
    ``start``).  A wrong hint costs only time: every served word is verified.

    Attributes:
        document: The source document's name as ingested: LangChain ``metadata["source"]``
            (or the ``Document.id`` given at ingestion), LlamaIndex ``ref_doc_id``, a file path.
        start: Character offset of the chunk in that document (LangChain ``start_index`` from
            ``add_start_index=True``, LlamaIndex ``start_char_idx``).
    """

    document: str | None = None
    start: int | None = None


def fingerprint_key(text: str, encoder_cache_id: str) -> str:
    """Content key of a text's fingerprints (64 hex characters): sha256 of the text exactly as
    encoded (a document, or a chunk ingested as one), of the encoder's ``cache_id`` (model id and
    window settings) and of the format version."""
    h = hashlib.sha256()
    head = f"semtoken-fp-v{FINGERPRINT_FORMAT_VERSION}\0{encoder_cache_id}\0"
    h.update(head.encode("utf-8", "surrogatepass"))  # any str id keys the in-memory cache
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
