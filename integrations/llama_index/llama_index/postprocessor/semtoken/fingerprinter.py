"""``SemTokenFingerprinter``: precompute fingerprints at ingestion, inside an IngestionPipeline.

Query-time compression is then a store lookup plus numpy: the encoder never runs on a chunk
that was ingested.  The component leaves nodes unchanged (it only writes to the store), so it
can sit anywhere after the splitter, alongside an embedding model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    create_model,
    model_validator,
)
from llama_index.core.schema import BaseNode, TransformComponent
from semtoken_rag.adapters import (
    EngineSlot,
    check_store,
    config_from_fields,
    encoder_options,
    field_definitions,
)
from semtoken_rag.config import SemTokenConfig

from llama_index.postprocessor.semtoken.nodes import node_text

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor

logger = logging.getLogger(__name__)


#: The encoder fields an ingestion component mirrors (the store key depends on nothing else).
_ENCODER_FIELDS = ("encoder_model", "device")

#: ``TransformComponent`` plus ``encoder_model`` and ``device``, derived from the config.
_MirroredFields: Any = create_model(
    "SemTokenFingerprinterFields",
    __base__=TransformComponent,
    **field_definitions(_ENCODER_FIELDS),
)


class SemTokenFingerprinter(_MirroredFields):
    """Writes the fingerprints of every node's text into a fingerprint store.

    Give it the same ``store`` / ``store_dir`` and encoder settings as the
    :class:`SemTokenNodePostprocessor` (or build it with ``postprocessor.fingerprinter()``) so
    query-time lookups hit.  Only the encoder settings matter here (the store key is the text,
    the encoder id and its window settings), so compression fields are not repeated.

    Example:
        >>> pipeline = IngestionPipeline(  # doctest: +SKIP
        ...     transformations=[SentenceSplitter(), SemTokenFingerprinter(store_dir="fp/")]
        ... )
    """

    engine_options: dict[str, Any] = Field(default_factory=dict)
    """Other :class:`semtoken_rag.SemTokenConfig` fields (``window_tokens``, ``batch_size``...)."""
    store_dir: str | Path | None = None
    """Directory of a persistent fingerprint store (opened on first use)."""
    store: Any | None = Field(default=None, exclude=True, repr=False)
    """A fingerprint store object (``get_many`` / ``put_many``)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    _slot: EngineSlot = PrivateAttr(default_factory=EngineSlot)

    @model_validator(mode="after")
    def _validate_engine_config(self) -> SemTokenFingerprinter:
        check_store(self.store, self.store_dir)
        self.semtoken_config()
        return self

    @classmethod
    def class_name(cls) -> str:
        return "SemTokenFingerprinter"

    @classmethod
    def from_engine(cls, engine: Compressor) -> SemTokenFingerprinter:
        """Wrap an existing engine (its encoder and store are shared, no second model)."""
        cfg = engine.config
        options = {k: v for k, v in encoder_options(cfg).items() if k not in _ENCODER_FIELDS}
        if not cfg.cache_embeddings:
            options["cache_embeddings"] = False
        obj = cls(
            encoder_model=cfg.encoder_model,
            device=cfg.device,
            engine_options=options,
            store=engine.store,
        )
        obj._slot.adopt(engine)
        return obj

    def semtoken_config(self) -> SemTokenConfig:
        """The engine configuration (only its encoder fields matter for fingerprints)."""
        return config_from_fields(self, "joint", self.engine_options, _ENCODER_FIELDS)

    @property
    def engine(self) -> Compressor:
        """The :class:`semtoken_rag.Compressor` whose encoder and store are used."""
        # Only the encoder fields matter here, so an engine given by from_engine is kept.
        return self._slot.get(
            self.semtoken_config(), self.store, self.store_dir, rebuild_on_change=False
        )

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Fingerprint the nodes' texts into the store; return the nodes unchanged."""
        texts = [t for t in (node_text(n) for n in nodes) if t.strip()]
        if texts:
            encoded = self.engine.precompute(texts)
            logger.info("fingerprinted %d nodes (%d newly encoded)", len(texts), encoded)
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """:meth:`__call__` in a worker thread, so the event loop is not blocked."""
        return await asyncio.to_thread(self.__call__, nodes, **kwargs)
