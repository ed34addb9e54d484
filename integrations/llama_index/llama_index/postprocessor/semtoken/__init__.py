"""LlamaIndex integration of semtoken-rag.

* :class:`SemTokenNodePostprocessor` — query-aware compression of retrieved nodes, for
  ``index.as_query_engine(node_postprocessors=[...])`` and ``RetrieverQueryEngine``.
* :class:`SemTokenFingerprinter` — an ingestion ``TransformComponent`` that precomputes
  fingerprints into the shared store.
"""

from __future__ import annotations

from llama_index.postprocessor.semtoken.base import METADATA_KEY, SemTokenNodePostprocessor
from llama_index.postprocessor.semtoken.fingerprinter import SemTokenFingerprinter

__version__ = "0.1.0"

__all__ = ["METADATA_KEY", "SemTokenFingerprinter", "SemTokenNodePostprocessor", "__version__"]
