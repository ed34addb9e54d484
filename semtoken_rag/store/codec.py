"""Byte encoding of one store entry and its checksum (pure, no I/O).

Fingerprints are stored as raw little-endian bytes (``<f4`` vectors, ``<i8`` word spans), never
pickled, so a store written on one machine reads identically on any other.  The checksum covers
the key, the shape and both payloads, so a row whose bytes were damaged *or* swapped with
another row's is detected on read.
"""

from __future__ import annotations

import hashlib

import numpy as np

from semtoken_rag.fingerprints import ChunkFingerprints

#: Digest used for per-entry checksums (hashlib name).
CHECKSUM_ALGO = "sha256"


def encode_entry(fp: ChunkFingerprints) -> tuple[bytes, bytes]:
    """Raw bytes of a chunk's fingerprints.

    Args:
        fp: Fingerprints; vectors ``(n, d)`` are stored as float32, spans ``(n, 2)`` as int64.

    Returns:
        ``(vector_bytes, span_bytes)``, little-endian, C order.
    """
    vec = np.ascontiguousarray(fp.vectors, dtype="<f4").tobytes()
    spans = np.ascontiguousarray(fp.word_spans, dtype="<i8").tobytes()
    return vec, spans


def checksum(key: str, n_words: int, dim: int, vec: bytes, spans: bytes) -> bytes:
    """Digest binding key, shape and payload together (32 bytes)."""
    h = hashlib.new(CHECKSUM_ALGO)
    h.update(f"{key}\0{n_words}\0{dim}\0".encode())
    h.update(vec)
    h.update(spans)
    return h.digest()


def decode_entry(n_words: int, dim: int, vec: bytes, spans: bytes) -> ChunkFingerprints:
    """Inverse of :func:`encode_entry`.

    Returns:
        :class:`ChunkFingerprints` whose arrays are read-only views of the bytes (a stored value
        must not be mutated by a caller; ``np.array(fp.vectors)`` gives a writable copy).

    Raises:
        ValueError: the byte lengths disagree with the shape.
    """
    if len(vec) != n_words * dim * 4 or len(spans) != n_words * 16:
        raise ValueError(
            f"payload sizes {len(vec)}/{len(spans)} disagree with shape ({n_words}, {dim})"
        )
    vectors = np.frombuffer(vec, dtype="<f4").reshape(n_words, dim).astype(np.float32, copy=False)
    word_spans = np.frombuffer(spans, dtype="<i8").reshape(n_words, 2).astype(np.int64, copy=False)
    return ChunkFingerprints(vectors, word_spans)
