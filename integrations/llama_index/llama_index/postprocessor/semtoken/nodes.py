"""Node text as the engine sees it (shared by the postprocessor and the fingerprinter)."""

from __future__ import annotations

from llama_index.core.schema import BaseNode, MetadataMode


def node_text(node: BaseNode) -> str:
    """The raw text of a node (no metadata): the string the engine compresses and caches, so
    the ingestion fingerprinter and the postprocessor compute the same store key."""
    return node.get_content(metadata_mode=MetadataMode.NONE) or ""
