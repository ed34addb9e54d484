"""The public helper every framework adapter is built on (LangChain, LlamaIndex, your own).

An adapter is a thin shell: flat fields a framework user sets (``compression_ratio=0.4``), an
engine (:class:`~semtoken_rag.Compressor`) built from them on first use, and translation of the
framework's objects to strings and back.  Everything the shells share lives here, with no
framework import, so they cannot drift apart:

* :func:`field_definitions`: the mirrored fields (names, types, defaults, descriptions) derived
  from the config's knob declarations, ready for ``pydantic.create_model``; an adapter never
  lists a knob or its default by hand;
* :func:`config_from_fields` / :func:`fields_from_config`: adapter fields <-> engine config;
* :class:`EngineSlot`: the lazily built, thread-safe, rebuilt-on-change engine of an adapter
  (or one it adopted, to share a model);
* :func:`check_store`, :func:`open_store`, :func:`chunk_metadata`.

Example (a new framework adapter)::

    Fields = pydantic.create_model("MyFields", __base__=FrameworkBase, **field_definitions())

    class MyCompressor(Fields):
        budget_scope: str = "joint"
        engine_options: dict = {}
        _slot: EngineSlot = PrivateAttr(default_factory=EngineSlot)

        def engine(self):
            cfg = config_from_fields(self, self.budget_scope, self.engine_options)
            return self._slot.get(cfg, store=None, store_dir=None)
"""

from __future__ import annotations

import threading
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from semtoken_rag.config import FLAT, PARTS, SemTokenConfig
from semtoken_rag.errors import ConfigError
from semtoken_rag.knobs import knob_default, knob_doc
from semtoken_rag.results import ChunkResult

if TYPE_CHECKING:
    from semtoken_rag.compressor import Compressor

#: Engine config fields exposed one-to-one as first-class adapter fields (same names, defaults
#: and documentation as the config); every other field goes through ``engine_options``.
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


def _locate(flat: str) -> tuple[type, str]:
    part, field = FLAT[flat]
    return PARTS[part], field


def field_definitions(names: tuple[str, ...] = MIRRORED) -> dict[str, tuple[Any, Any]]:
    """``{name: (type, pydantic.FieldInfo)}`` of mirrored fields, for ``pydantic.create_model``.

    Types, defaults and descriptions come from the config's knob declarations, so an adapter
    field can never disagree with the engine's.
    """
    from pydantic import Field

    out: dict[str, tuple[Any, Any]] = {}
    for name in names:
        part, field = _locate(name)
        hint = typing.get_type_hints(part)[field]
        out[name] = (
            hint,
            Field(default=knob_default(part, field), description=knob_doc(part, field)),
        )
    return out


def config_from_fields(
    adapter: Any,
    budget_scope: str,
    engine_options: Mapping[str, Any],
    names: tuple[str, ...] = MIRRORED,
) -> SemTokenConfig:
    """The engine config an adapter's fields describe.

    Args:
        adapter: Any object with the mirrored fields as attributes (or a mapping of them).
        budget_scope: Adapter spelling of the scope (a key of :data:`SCOPES`).
        engine_options: Any other flat :class:`SemTokenConfig` field (``unit``, ...).
        names: The mirrored field names the adapter has.

    Raises:
        ConfigError: unknown or doubly given options, or values the engine rejects.
    """
    values = (
        {n: adapter[n] for n in names}
        if isinstance(adapter, Mapping)
        else {n: getattr(adapter, n) for n in names}
    )
    clash = sorted(set(engine_options) & (set(names) | {"budget_scope"}))
    if clash:
        raise ConfigError(f"engine_options repeats adapter fields {clash}: set them directly")
    unknown = sorted(set(engine_options) - set(SemTokenConfig.flat_names()))
    if unknown:
        raise ConfigError(
            f"unknown engine_options {unknown}; valid: {sorted(SemTokenConfig.flat_names())}"
        )
    if budget_scope not in SCOPES:
        raise ConfigError(f"budget_scope must be one of {sorted(SCOPES)}, got {budget_scope!r}")
    return SemTokenConfig(**dict(engine_options), **values, budget_scope=SCOPES[budget_scope])


def fields_from_config(
    config: SemTokenConfig, per_scope: str, names: tuple[str, ...] = MIRRORED
) -> dict[str, Any]:
    """Adapter field values reproducing ``config`` exactly (inverse of
    :func:`config_from_fields`): the mirrored fields, ``budget_scope`` in the adapter's
    spelling, and ``engine_options`` holding every other field that is not at its default.
    """
    options = {k: v for k, v in config.diff().items() if k not in names and k != "budget_scope"}
    fields: dict[str, Any] = {name: getattr(config, name) for name in names}
    fields["budget_scope"] = "joint" if config.budget_scope == "joint" else per_scope
    fields["engine_options"] = options
    return fields


def encoder_options(config: SemTokenConfig) -> dict[str, Any]:
    """The encoder knobs of ``config`` that differ from the defaults, by flat name (what an
    ingestion component needs to fingerprint exactly as the postprocessor will look up)."""
    names = {flat for flat, (part, _) in FLAT.items() if part == "encoder"}
    return {k: v for k, v in config.diff().items() if k in names}


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
    """An adapter's engine: built on first use (constructing an adapter loads no model),
    shared by threads, and rebuilt when the adapter's fields describe another config.

    An engine given to :meth:`adopt` (``Adapter.from_engine(engine)``) is used while the fields
    still describe its config, so an application shares one encoder, store and counter between
    adapters.
    """

    def __init__(self) -> None:
        self._engine: Compressor | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether an engine exists yet (built or adopted)."""
        return self._engine is not None

    def adopt(self, engine: Compressor) -> None:
        """Use ``engine`` (instead of building one) while the fields describe its config."""
        with self._lock:
            self._engine = engine

    def get(
        self,
        config: SemTokenConfig,
        store: Any,
        store_dir: str | Path | None,
        *,
        rebuild_on_change: bool = True,
    ) -> Compressor:
        """The engine for ``config`` (built once; rebuilt if the config changed)."""
        with self._lock:
            stale = self._engine is not None and rebuild_on_change and self._engine.config != config
            if self._engine is None or stale:
                from semtoken_rag.compressor import Compressor

                self._engine = Compressor(config, store=open_store(store, store_dir))
            return self._engine
