"""semtoken-rag: semantic compression of retrieved context for RAG.

Quick start::

    from semtoken_rag import SemToken, SemTokenConfig
    result = SemToken(SemTokenConfig(compression_ratio=0.5)).tokenize(text, query="...")

Heavy dependencies (torch, transformers, faiss, frameworks) load only when used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from semtoken_rag.config import (
    PRESETS,
    BudgetConfig,
    EncoderConfig,
    SelectionConfig,
    SemTokenConfig,
)
from semtoken_rag.errors import (
    ConfigError,
    ForceKeepTimeoutError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    SemTokenError,
    StoreError,
)
from semtoken_rag.protocols import Counter, FingerprintEncoder, FingerprintStoreProtocol
from semtoken_rag.results import ChunkResult, CompressionResult, Explanation, StageTimings

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor
    from semtoken_rag.prepared import Plan, PreparedChunk, PreparedContext
    from semtoken_rag.seed import SemToken

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "Compressor": "semtoken_rag.compressor",
    "SemToken": "semtoken_rag.seed",
    "TransformerEncoder": "semtoken_rag.encoder",
    "FingerprintStore": "semtoken_rag.store",
    "Plan": "semtoken_rag.prepared",
    "PreparedChunk": "semtoken_rag.prepared",
    "PreparedContext": "semtoken_rag.prepared",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'semtoken_rag' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "PRESETS",
    "BudgetConfig",
    "ChunkResult",
    "CompressionResult",
    "Compressor",
    "ConfigError",
    "Counter",
    "EncoderConfig",
    "Explanation",
    "FingerprintEncoder",
    "FingerprintStore",
    "FingerprintStoreProtocol",
    "ForceKeepTimeoutError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "Plan",
    "PreparedChunk",
    "PreparedContext",
    "SelectionConfig",
    "SemToken",
    "SemTokenConfig",
    "SemTokenError",
    "StageTimings",
    "StoreError",
    "TransformerEncoder",
    "__version__",
]
