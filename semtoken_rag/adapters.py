"""What every framework adapter shares: flat fields <-> engine config, store, metadata.

The LangChain compressor and the LlamaIndex postprocessor are thin shells over
:class:`~semtoken_rag.Compressor`; the translation they both need lives here, in plain
semtoken-rag types with no framework import, so the two adapters cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semtoken_rag.config import SemTokenConfig
from semtoken_rag.errors import ConfigError
from semtoken_rag.results import ChunkResult

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor

#: Engine config fields exposed one-to-one as adapter fields (same names, same defaults).
MIRRORED: tuple[str, ...] = (
    "compression_ratio",
    "budget_tokens",
    "similarity_threshold",
    "entropy_threshold",
    "encoder_model",
    "dedup_threshold",
    "force_keep",
    "force_keep_presets",
    "count_tokenizer",
    "device",
)

#: Adapter spelling of ``budget_scope`` -> engine spelling.  The engine calls the input pieces
#: chunks; LangChain users think in documents and LlamaIndex users in nodes, so all are accepted.
SCOPES: dict[str, str] = {
    "joint": "joint",
    "per_chunk": "per_chunk",
    "per_document": "per_chunk",
    "per_node": "per_chunk",
}

DEFAULTS = SemTokenConfig()
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(SemTokenConfig))


def build_config(
    values: Mapping[str, Any], budget_scope: str, engine_options: Mapping[str, Any]
) -> SemTokenConfig:
    """The engine config for the adapter's field values.

    Args:
        values: The mirrored fields (``MIRRORED``) by name.
        budget_scope: Adapter spelling of the scope (a key of ``SCOPES``).
        engine_options: Any other :class:`SemTokenConfig` field (``unit``, ``separator``, ...).

    Raises:
        ConfigError: unknown or doubly given options, or values the engine rejects.
    """
    clash = sorted(set(engine_options) & (set(MIRRORED) | {"budget_scope"}))
    if clash:
        raise ConfigError(f"engine_options repeats adapter fields {clash}: set them directly")
    unknown = sorted(set(engine_options) - _CONFIG_FIELDS)
    if unknown:
        raise ConfigError(f"unknown engine_options {unknown}; valid: {sorted(_CONFIG_FIELDS)}")
    return SemTokenConfig(
        **dict(engine_options),
        **dict(values),
        budget_scope=SCOPES[budget_scope],  # type: ignore[arg-type]
    )


def split_config(config: SemTokenConfig, per_scope: str) -> dict[str, Any]:
    """Adapter field values reproducing ``config`` exactly (inverse of :func:`build_config`).

    Args:
        config: An engine config.
        per_scope: The adapter's spelling of the engine's ``per_chunk`` scope.
    """
    options = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in MIRRORED
        and f.name != "budget_scope"
        and getattr(config, f.name) != getattr(DEFAULTS, f.name)
    }
    fields: dict[str, Any] = {name: getattr(config, name) for name in MIRRORED}
    fields["budget_scope"] = "joint" if config.budget_scope == "joint" else per_scope
    fields["engine_options"] = options
    return fields


def check_store(store: Any, store_dir: str | Path | None) -> None:
    """Reject a store without the protocol, or a store and a directory given together."""
    if store is not None and store_dir is not None:
        raise ConfigError("give either store= or store_dir=, not both")
    if store is not None and not (hasattr(store, "get_many") and hasattr(store, "put_many")):
        raise ConfigError(
            f"store must implement get_many/put_many (FingerprintStore protocol), "
            f"got {type(store).__name__}"
        )


def open_store(store: Any, store_dir: str | Path | None) -> Any:
    """The store object to hand the engine (``None``: the engine's in-memory default).

    A directory opens a persistent :class:`semtoken_rag.store.FingerprintStore`, imported only
    here so that FAISS loads only for users who asked for a persistent store.
    """
    if store is not None:
        return store
    if store_dir is None:
        return None
    from semtoken_rag.store import FingerprintStore

    return FingerprintStore(path=Path(store_dir).expanduser())


def chunk_metadata(chunk: ChunkResult) -> dict[str, Any]:
    """JSON-ready metadata for one compressed chunk.

    Plain lists and ints (not tuples or numpy scalars) so any vector store or tracer can
    serialise the metadata.  Offsets index the text the compressor *received*.
    """
    return {
        "offsets": [[int(s), int(e)] for s, e in chunk.offsets],
        "original_tokens": int(chunk.original_tokens),
        "kept_tokens": int(chunk.kept_tokens),
        "ratio": float(chunk.ratio),
    }


class EngineSlot:
    """An adapter's engine: built on first use (no model loads at construction), shared by
    threads, and rebuilt when the adapter's fields describe a different config."""

    def __init__(self) -> None:
        self.engine: Compressor | None = None
        self._lock = threading.Lock()

    def get(
        self,
        config: SemTokenConfig,
        store: Any,
        store_dir: str | Path | None,
        *,
        rebuild_on_change: bool = True,
    ) -> Compressor:
        with self._lock:
            stale = self.engine is not None and self.engine.config != config
            if self.engine is None or (rebuild_on_change and stale):
                from semtoken_rag.compressor import Compressor

                self.engine = Compressor(config, store=open_store(store, store_dir))
            return self.engine


def mirrored_config(adapter: Any, budget_scope: str) -> SemTokenConfig:
    """The engine config of an adapter whose fields mirror ``MIRRORED`` + ``engine_options``."""
    return build_config(
        {name: getattr(adapter, name) for name in MIRRORED}, budget_scope, adapter.engine_options
    )


def wrap_engine(cls: Any, engine: Compressor, per_scope: str, **kwargs: Any) -> Any:
    """An adapter of class ``cls`` around an existing engine (shares its encoder, store and
    counter: no second model).  ``kwargs`` are adapter-only fields, e.g. ``drop_empty``."""
    obj = cls(**split_config(engine.config, per_scope=per_scope), store=engine.store, **kwargs)
    obj._slot.engine = engine
    return obj
