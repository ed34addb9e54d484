"""LangChain integration of semtoken-rag: ``SemTokenCompressor`` (a ``BaseDocumentCompressor``).

Use it on its own (``compress_documents``), inside ``ContextualCompressionRetriever`` or in a
``DocumentCompressorPipeline``; ``SemTokenIngestor`` (a ``BaseDocumentTransformer``) fills the
fingerprint store it reads from whole documents, so any chunking is served from the store.
"""

from __future__ import annotations

from langchain_semtoken.compressor import METADATA_KEY, SemTokenCompressor
from langchain_semtoken.ingestor import SemTokenIngestor

__version__ = "0.1.0"

__all__ = ["METADATA_KEY", "SemTokenCompressor", "SemTokenIngestor", "__version__"]
