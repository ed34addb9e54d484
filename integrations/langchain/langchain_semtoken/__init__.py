"""LangChain integration of semtoken-rag: ``SemTokenCompressor`` (a ``BaseDocumentCompressor``).

Use it on its own (``compress_documents``), inside ``ContextualCompressionRetriever`` or in a
``DocumentCompressorPipeline``.
"""

from __future__ import annotations

from langchain_semtoken.compressor import METADATA_KEY, SemTokenCompressor

__version__ = "0.1.0"

__all__ = ["METADATA_KEY", "SemTokenCompressor", "__version__"]
