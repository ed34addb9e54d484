"""Persistent fingerprint store: word fingerprints of whole documents (SQLite + a FAISS/numpy
codec), served to any chunk cut from them.  Imported lazily; FAISS loads only when needed.
"""

from __future__ import annotations

from semtoken_rag.errors import NonFiniteFingerprintsError
from semtoken_rag.store.codebooks import CodecSet
from semtoken_rag.store.codecs import CODECS, DEFAULT_CODEC, CodecSpec, get_codec
from semtoken_rag.store.encoding import (
    DocumentFingerprints,
    EncodedDocument,
    encode_documents,
)
from semtoken_rag.store.store import FingerprintStore
from semtoken_rag.store.types import (
    CodebookChangedError,
    StoreDamagedError,
    StoreStats,
    StoreWarning,
)

__all__ = [
    "CODECS",
    "DEFAULT_CODEC",
    "CodebookChangedError",
    "CodecSet",
    "CodecSpec",
    "DocumentFingerprints",
    "EncodedDocument",
    "FingerprintStore",
    "NonFiniteFingerprintsError",
    "StoreDamagedError",
    "StoreStats",
    "StoreWarning",
    "encode_documents",
    "get_codec",
]
