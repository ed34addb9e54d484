"""``SemTokenFingerprinter``: fingerprints computed at ingestion, inside an IngestionPipeline.

Query-time compression is then a store lookup plus numpy: the encoder never runs on text that
was ingested.  The component leaves its input unchanged (it only writes to the store).  Put it
*before* the node parser: each ``Document`` is stored whole, and every node any parser cuts from
it is served from the store (located by its ``ref_doc_id`` and its content).  After the parser,
each node is stored as a short document of its own (it hits when the same node comes back).

``IngestionPipeline`` caches each step's output by its input and the step's serialised fields,
and skips a step it has run on the same nodes: ``store_dir`` is such a field, a ``store=`` object
is not, so writing the same documents into another store object, or into a store that was
deleted, needs ``disable_cache=True`` (or a fresh cache) for that run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, model_validator
from llama_index.core.schema import BaseNode, TransformComponent
from semtoken_rag.adapter_stores import StoreDir, require_store
from semtoken_rag.adapters import (
    ENCODER_MIRRORED,
    EncoderFields,
    adopt_engine,
    as_items,
    config_from_fields,
)
from semtoken_rag.config import SemTokenConfig

from llama_index.postprocessor.semtoken.nodes import node_names, node_text

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor

logger = logging.getLogger(__name__)


def without_class_name(cls: type[TransformComponent], data: Any) -> Any:
    """``data`` without the ``class_name`` a LlamaIndex component's ``model_dump()`` adds (its
    own class's), so the dump loads back as ``from_dict`` loads ``to_dict()``."""
    if isinstance(data, dict) and data.get("class_name") == cls.class_name():
        return {k: v for k, v in data.items() if k != "class_name"}
    return data


class SemTokenFingerprinter(EncoderFields, TransformComponent):
    """Writes the fingerprints of every node's text into a fingerprint store.

    Give it the same ``store`` / ``store_dir`` and encoder settings as the
    :class:`SemTokenNodePostprocessor` (or build it with ``postprocessor.fingerprinter()``) so
    query-time lookups hit; a store is required (``store_dir`` or ``store``).  A ``Document``
    is recorded under its ``doc_id``, a node under its ``ref_doc_id``: the names a retrieved
    node carries back as a hint.  Only the encoder settings matter here (the store key is the text,
    the encoder id and its window settings), so compression fields are not repeated: the typed
    fields ``encoder_model`` and ``device`` come from :class:`semtoken_rag.adapters.EncoderFields`
    (an invalid value raises :class:`semtoken_rag.ConfigError`).

    Example:
        >>> pipeline = IngestionPipeline(  # doctest: +SKIP
        ...     transformations=[SemTokenFingerprinter(store_dir="fp/"), SentenceSplitter()]
        ... )
    """

    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Other :class:`semtoken_rag.SemTokenConfig` fields (``window_tokens``, ``batch_size``...)."""
    store_dir: StoreDir = None
    """Directory of a persistent fingerprint store (opened on first use)."""
    store: Any | None = Field(default=None, exclude=True, repr=False)
    """A fingerprint store object (``semtoken_rag.protocols.FingerprintStoreProtocol``)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _loads_model_dump(cls, data: Any) -> Any:
        return without_class_name(cls, data)

    @model_validator(mode="after")
    def _validate_engine_config(self) -> SemTokenFingerprinter:
        require_store(self.store, self.store_dir, "SemTokenFingerprinter")
        self.semtoken_config()
        return self

    @classmethod
    def class_name(cls) -> str:
        return "SemTokenFingerprinter"

    @classmethod
    def from_engine(cls, engine: Compressor) -> SemTokenFingerprinter:
        """Wrap an existing engine (its encoder and store are shared, no second model)."""
        return adopt_engine(cls, engine, None, {})

    def semtoken_config(self) -> SemTokenConfig:
        """The engine configuration (only its encoder fields matter for fingerprints)."""
        return config_from_fields(self, "joint", self.engine_options, ENCODER_MIRRORED)

    @property
    def engine(self) -> Compressor:
        """The :class:`semtoken_rag.Compressor` whose encoder and store are used."""
        # Only the encoder fields matter here, so an engine given by from_engine is kept.
        return self._slot.get(self.semtoken_config(), self.store, self.store_dir, encoder_only=True)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Fingerprint the documents' (or nodes') texts into the store; return them unchanged.

        ``show_progress=True`` (what ``IngestionPipeline.run(show_progress=True)`` passes)
        shows a progress bar, also while a new store's codec trains.
        """
        from semtoken_rag.ingestion import IngestOptions, SourceDocument

        items = as_items(nodes, BaseNode, "nodes")
        docs = [SourceDocument(node_text(n), node_names(n)) for n in items]
        report = self.engine.ingest(docs, IngestOptions(progress=bool(kwargs.get("show_progress"))))
        logger.info(
            "fingerprinted %d documents (%d newly encoded)", report.documents, report.encoded
        )
        # The input itself (a one-shot iterable, already consumed, as the list it yielded).
        return nodes if isinstance(nodes, Sequence) else items

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """:meth:`__call__` in a worker thread, so the event loop is not blocked."""
        return await asyncio.to_thread(self.__call__, nodes, **kwargs)
