"""The value the encoder produces and the store keeps: word fingerprints of one chunk."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

#: Bumped whenever the meaning of stored fingerprints changes (segmentation, pooling, norm).
FINGERPRINT_FORMAT_VERSION = 1


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


def fingerprint_key(text: str, encoder_cache_id: str) -> str:
    """Content key of a chunk's fingerprints: sha256 of text, encoder id+settings, format version.

    Args:
        text: The chunk text, exactly as compressed.
        encoder_cache_id: :attr:`FingerprintEncoder.cache_id` (model id and window settings).

    Returns:
        64 hex characters.
    """
    h = hashlib.sha256()
    h.update(f"semtoken-fp-v{FINGERPRINT_FORMAT_VERSION}\0{encoder_cache_id}\0".encode())
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
