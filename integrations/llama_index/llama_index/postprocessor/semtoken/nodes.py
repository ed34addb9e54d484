"""Node text as the engine sees it (shared by the postprocessor and the fingerprinter)."""

from __future__ import annotations

from llama_index.core.schema import BaseNode, Document, MetadataMode, NodeWithScore
from semtoken_rag.adapters import chunk_source
from semtoken_rag.fingerprints import ChunkSource


def node_text(node: BaseNode) -> str:
    """The raw text of a node (no metadata): the string the engine compresses and caches, so
    the ingestion fingerprinter and the postprocessor compute the same store key."""
    return node.get_content(metadata_mode=MetadataMode.NONE) or ""


def node_names(node: BaseNode) -> tuple[str, ...]:
    """Names an ingested document or node is recorded under: a ``Document``'s ``doc_id``, a
    node's ``ref_doc_id`` (the id of the document it was parsed from, which a retrieved node
    carries)."""
    name = node.doc_id if isinstance(node, Document) else node.ref_doc_id
    return (name,) if isinstance(name, str) and name else ()


def node_source(nws: NodeWithScore) -> ChunkSource | None:
    """The hint a retrieved node gives the store: ``ref_doc_id`` and ``start_char_idx`` (only
    ``TextNode`` and its subclasses have an offset; a ``Document`` or a ``Node`` has none)."""
    node = nws.node
    return chunk_source(node.ref_doc_id, getattr(node, "start_char_idx", None))
