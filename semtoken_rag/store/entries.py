"""Bytes of one store entry and its checksum (pure, no I/O).

An entry is a chunk's word vectors encoded by a codebook (:mod:`semtoken_rag.store.codecs`)
and its word spans (:mod:`semtoken_rag.store.spans`).  The checksum binds the key, the shape,
the *codebook's digest* and both payloads, so a row whose bytes were damaged, swapped with
another row's, or read against another codebook is detected before anything is decoded.
Never pickled: a store written on one machine reads identically on any other.
"""

from __future__ import annotations

import hashlib

#: Digest used for per-entry checksums (hashlib name).
CHECKSUM_ALGO = "sha256"


def checksum(key: str, n_words: int, dim: int, codebook: bytes, vec: bytes, spans: bytes) -> bytes:
    """Digest of one entry (32 bytes).

    Args:
        key: The entry's key.
        n_words: Rows of the vectors.
        dim: Vector dimension.
        codebook: sha256 of the codebook the vectors were encoded with.
        vec: Encoded vectors.
        spans: Encoded spans.
    """
    h = hashlib.new(CHECKSUM_ALGO)
    h.update(f"{key}\0{n_words}\0{dim}\0".encode("utf-8", "surrogatepass"))
    h.update(codebook)
    h.update(vec)
    h.update(spans)
    return h.digest()
