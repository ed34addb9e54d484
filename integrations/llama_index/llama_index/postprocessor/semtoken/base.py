"""``SemTokenNodePostprocessor``: semtoken-rag as a LlamaIndex node postprocessor.

A thin adapter: pydantic fields mirror :class:`semtoken_rag.SemTokenConfig` (declared once, in
:class:`semtoken_rag.adapters.CompressionFields`), the engine
(:class:`semtoken_rag.Compressor`) does the work, and this module translates ``NodeWithScore``
objects to strings and results back to node copies plus metadata.

Unlike LlamaIndex's LongLLMLingua postprocessor, which joins all nodes into one compressed
string and returns a single new node, this keeps every node: its id, score, relationships and
metadata survive, so citations, source display and score-based postprocessors still work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, model_validator
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore, QueryBundle
from semtoken_rag.adapter_stores import StoreDir, check_store
from semtoken_rag.adapters import (
    CompressionFields,
    ScopeName,
    adopt_engine,
    as_items,
    chunk_metadata,
    config_from_fields,
)
from semtoken_rag.config import SemTokenConfig
from semtoken_rag.errors import InvalidInputError
from semtoken_rag.fingerprints import ChunkSource

from llama_index.postprocessor.semtoken.fingerprinter import (
    SemTokenFingerprinter,
    without_class_name,
)
from llama_index.postprocessor.semtoken.nodes import node_source, node_text

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor
    from semtoken_rag.results import CompressionResult

#: Key under which each output node carries what was kept.
METADATA_KEY = "semtoken"


class SemTokenNodePostprocessor(CompressionFields, BaseNodePostprocessor):
    """Query-aware semantic compression of retrieved nodes (semtoken-rag).

    Every node is shortened to the sentences that best answer the query, near-duplicates across
    nodes are skipped, and one token budget is spent over all nodes together
    (``budget_scope="joint"``) or split in proportion to their lengths (``"per_node"``).

    Output contract:

    * nodes keep their order, ``node_id``, score, relationships and metadata; the compressed
      text is set on a *copy* of each node (retrieved nodes are never mutated, so a docstore or
      an in-memory index holding them stays intact);
    * each gains ``metadata["semtoken"] = {"offsets": [[start, end], ...], "original_tokens",
      "kept_tokens", "ratio"}`` (offsets into the node's text as received; with
      ``compression_ratio="auto"`` also ``"budget_choice"``,
      the budget the call chose and why); the key is added to
      ``excluded_llm_metadata_keys`` and ``excluded_embed_metadata_keys`` so it never reaches a
      prompt or an embedding;
    * a node compressed to nothing is dropped (``drop_empty=True``), as LlamaIndex's
      ``SimilarityPostprocessor`` drops irrelevant nodes (a whitespace-only text too, as in
      LangChain); nodes with no text at all (``""``, e.g. image nodes) pass through untouched.

    The engine knobs of :data:`semtoken_rag.adapters.MIRRORED` are typed fields inherited from
    :class:`semtoken_rag.adapters.CompressionFields`; any invalid value raises
    :class:`semtoken_rag.ConfigError` (a ``ValueError``) at construction.

    Example:
        >>> pp = SemTokenNodePostprocessor(compression_ratio=0.4)  # doctest: +SKIP
        >>> engine = index.as_query_engine(node_postprocessors=[pp])  # doctest: +SKIP
    """

    budget_scope: ScopeName = "joint"
    """One budget over all nodes (``joint``) or one share per node (``per_node``; ``per_chunk``
    and ``per_document`` are the same, spelled as the engine and LangChain do)."""
    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Any other :class:`semtoken_rag.SemTokenConfig` field (``unit``, ``separator``, ...)."""
    store_dir: StoreDir = None
    """Directory of a persistent fingerprint store (opened on first use)."""
    store: Any | None = Field(default=None, exclude=True, repr=False)
    """A fingerprint store object (``semtoken_rag.protocols.FingerprintStoreProtocol``), e.g.
    shared with LangChain."""
    drop_empty: bool = True
    """Drop nodes compressed to nothing (see the class docstring)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _loads_model_dump(cls, data: Any) -> Any:
        return without_class_name(cls, data)

    @model_validator(mode="after")
    def _validate_engine_config(self) -> SemTokenNodePostprocessor:
        # Fail at construction, not at the first query: the engine config validates everything.
        check_store(self.store, self.store_dir)
        self.semtoken_config()
        return self

    @classmethod
    def class_name(cls) -> str:
        return "SemTokenNodePostprocessor"

    @classmethod
    def from_engine(cls, engine: Compressor, **kwargs: Any) -> SemTokenNodePostprocessor:
        """Wrap an existing engine (shares its encoder, store and counter; no second model).

        Args:
            engine: A :class:`semtoken_rag.Compressor`.
            **kwargs: Adapter-only fields, e.g. ``drop_empty``.

        Raises:
            ConfigError: ``kwargs`` sets a config field or the store (they come from the engine).
        """
        return adopt_engine(cls, engine, "per_node", kwargs)

    def semtoken_config(self) -> SemTokenConfig:
        """The engine configuration these fields describe."""
        return config_from_fields(self, self.budget_scope, self.engine_options)

    @property
    def engine(self) -> Compressor:
        """The :class:`semtoken_rag.Compressor` doing the work (built lazily, thread-safe)."""
        return self._slot.get(self.semtoken_config(), self.store, self.store_dir)

    def fingerprinter(self) -> SemTokenFingerprinter:
        """An ingestion component writing fingerprints this postprocessor will hit (same
        engine: same encoder settings, same store, one model in memory)."""
        return adopt_engine(SemTokenFingerprinter, self.engine, None, {}, self.store_dir)

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        items = as_items(nodes, NodeWithScore, "nodes")
        query = _query(query_bundle)
        texts, positions, sources = self._texts(items)
        if not texts:
            return items
        result = self.engine.compress(texts, query, sources=sources)
        return self._to_nodes(items, positions, result)

    @staticmethod
    def _texts(
        nodes: list[NodeWithScore],
    ) -> tuple[list[str], list[int], list[ChunkSource | None]]:
        """Texts to compress, the positions of their nodes and their sources (hints for the
        store). Nodes with no text (``""``: an image node) are skipped; a whitespace-only text
        is compressed to nothing like any other, as the LangChain compressor does."""
        texts, positions, sources = [], [], []
        for i, nws in enumerate(nodes):
            text = node_text(nws.node)
            if text:
                texts.append(text)
                positions.append(i)
                sources.append(node_source(nws))
        return texts, positions, sources

    def _to_nodes(
        self, nodes: list[NodeWithScore], positions: list[int], result: CompressionResult
    ) -> list[NodeWithScore]:
        chunk_at = dict(zip(positions, result.chunks, strict=True))
        out = []
        for i, nws in enumerate(nodes):
            chunk = chunk_at.get(i)
            if chunk is None:
                out.append(nws)
                continue
            if self.drop_empty and not chunk.text:
                continue
            node = nws.node.model_copy()
            node.set_content(chunk.text)
            node.metadata = {**nws.node.metadata, METADATA_KEY: chunk_metadata(chunk, result)}
            node.excluded_llm_metadata_keys = _with_key(nws.node.excluded_llm_metadata_keys)
            node.excluded_embed_metadata_keys = _with_key(nws.node.excluded_embed_metadata_keys)
            out.append(NodeWithScore(node=node, score=nws.score))
        return out


def _query(query_bundle: QueryBundle | str | None) -> str | None:
    """The question of a ``QueryBundle``; a plain string is taken as the question itself (a
    common call, ``postprocess_nodes(nodes, "question")``).

    Raises:
        InvalidInputError: anything else.
    """
    if query_bundle is None or isinstance(query_bundle, str):
        return query_bundle
    if not isinstance(query_bundle, QueryBundle):
        raise InvalidInputError(
            f"query_bundle must be a QueryBundle, a str or None, got {type(query_bundle).__name__}"
        )
    return query_bundle.query_str


def _with_key(keys: list[str]) -> list[str]:
    return list(keys) if METADATA_KEY in keys else [*keys, METADATA_KEY]
