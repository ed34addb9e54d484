"""The public helper every framework adapter is built on (LangChain, LlamaIndex, your own).

An adapter is a thin shell: flat typed fields mirroring the config (``compression_ratio=0.4``),
an engine (:class:`~semtoken_rag.Compressor`) built from them on first use, and translation of
framework objects to strings and back.  What the shells share lives here, framework-free, so
they cannot drift apart::

    class MyCompressor(CompressionFields, FrameworkBase):
        budget_scope: str = "joint"
        engine_options: dict = {}

        def engine(self):  # the engine slot (``self._slot``) comes with the fields
            cfg = config_from_fields(self, self.budget_scope, self.engine_options)
            return self._slot.get(cfg, store=None, store_dir=None)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from pydantic import ConfigDict, Field, PrivateAttr, ValidationError

from semtoken_rag.adapter_stores import open_store
from semtoken_rag.config import (
    FLAT,
    Device,
    EncoderModel,
    ForceKeepPresets,
    Ratio,
    SemTokenConfig,
    Share,
    config_field,
)
from semtoken_rag.config_base import (
    Integer,
    NonBlank,
    Number,
    Patterns,
    TypedLoading,
    config_error,
)
from semtoken_rag.errors import ConfigError, InvalidInputError
from semtoken_rag.fingerprints import MAX_START, ChunkSource
from semtoken_rag.fork_threads import ForkSafeLock
from semtoken_rag.results import ChunkResult, CompressionResult

A = TypeVar("A", bound="EncoderFields")

if TYPE_CHECKING:  # typing.Self is Python 3.11+; the package supports 3.10
    from typing_extensions import Self

    from semtoken_rag.compressor import Compressor


def _mirror(flat: str) -> Any:
    """The config's declaration of ``flat`` (default, description, bounds) for an adapter field."""
    info = config_field(flat)
    bounds = {
        k: getattr(m, k) for m in info.metadata for k in ("gt", "ge", "lt", "le") if hasattr(m, k)
    }
    return Field(default=info.default, description=info.description, **bounds)


class EngineSlot:
    """An adapter's engine: built on first use, shared by threads, rebuilt when the fields
    describe another config or store.  One given to :meth:`adopt` (``from_engine``) is used while
    they match, so adapters can share one encoder, store and counter.

    A copy of an adapter gets its own slot holding the same engine: changing the copy's fields
    rebuilds only the copy's engine (an engine holds locks and a database: never deep-copied)."""

    def __init__(self, engine: Compressor | None = None, store: Any = None) -> None:
        self._engine = engine
        self._store = store  # what the engine was built for: the store field, or store_dir
        self._lock = ForkSafeLock()

    @property
    def built(self) -> bool:
        """Whether an engine exists yet (built or adopted)."""
        return self._engine is not None

    def adopt(self, engine: Compressor, store: Any = None) -> None:
        """Use ``engine`` while the fields name its config and ``store`` (default ``engine.store``,
        or the directory it was opened from)."""
        with self._lock:
            self._engine, self._store = engine, engine.store if store is None else store

    def fork(self) -> EngineSlot:
        """A new slot holding this slot's engine (for a copy of the adapter)."""
        with self._lock:
            return EngineSlot(self._engine, self._store)

    def __deepcopy__(self, memo: dict[int, Any]) -> EngineSlot:
        return self.fork()

    def __reduce__(self) -> tuple[type[EngineSlot], tuple[()]]:
        # Pickled (e.g. IngestionPipeline(num_workers=...)): the copy builds its own engine.
        return EngineSlot, ()

    def get(
        self,
        config: SemTokenConfig,
        store: Any,
        store_dir: str | Path | None,
        *,
        encoder_only: bool = False,
    ) -> Compressor:
        """The engine for ``config`` and the store (``store``, else ``store_dir``), rebuilt when
        either changed; ``encoder_only`` compares only the encoder part (ingestion components)."""
        wanted = store if store is not None else None if store_dir is None else str(store_dir)
        with self._lock:
            engine = self._engine
            if engine is None or (wanted is not self._store and wanted != self._store):
                stale = True  # no engine yet, or another store object or directory
            elif encoder_only:
                stale = engine.config.encoder != config.encoder
            else:
                stale = engine.config != config
            if stale:
                from semtoken_rag.compressor import Compressor

                self._engine = Compressor(config, store=open_store(store, store_dir))
                self._store = wanted
            assert self._engine is not None
            return self._engine


class EncoderFields(TypedLoading):
    """The encoder knobs an adapter mirrors (the store key depends on nothing else).

    Construction raises a one-line :class:`ConfigError`, not pydantic's ``ValidationError``."""

    model_config = ConfigDict(extra="forbid")

    _slot: EngineSlot = PrivateAttr(default_factory=EngineSlot)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(exc, data, type(self)) from None

    def __copy__(self) -> Self:
        # pydantic copies private attributes shallowly: give the copy a slot of its own.
        clone = super().__copy__()
        clone._slot = self._slot.fork()
        return clone

    def __getstate__(self) -> dict[Any, Any]:
        # A store object (locks, a database) cannot go to another process; its directory can.
        if getattr(self, "store", None) is not None:
            raise ConfigError(
                f"{type(self).__name__} with store= cannot be pickled (sent to another process, "
                "e.g. by IngestionPipeline(num_workers=...)): give it store_dir= instead"
            )
        state: dict[Any, Any] = super().__getstate__()
        return state

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # A store object is a resource (locks, a database): shared by the copy, never copied.
        memo = {} if memo is None else memo
        store = getattr(self, "store", None)
        if store is not None:
            memo[id(store)] = store
        return super().__deepcopy__(memo)

    encoder_model: EncoderModel = _mirror("encoder_model")
    device: Device = _mirror("device")


class CompressionFields(EncoderFields):
    """The knobs a compressing adapter mirrors one-to-one from
    :class:`~semtoken_rag.SemTokenConfig`; every other knob goes through ``engine_options``."""

    compression_ratio: Ratio = _mirror("compression_ratio")
    min_ratio: Share = _mirror("min_ratio")
    max_ratio: Share = _mirror("max_ratio")
    max_tokens: Integer | None = _mirror("max_tokens")
    budget_tokens: Integer | None = _mirror("budget_tokens")
    similarity_threshold: Number = _mirror("similarity_threshold")
    entropy_threshold: Number = _mirror("entropy_threshold")
    dedup_threshold: Number | None = _mirror("dedup_threshold")
    force_keep: Patterns = _mirror("force_keep")
    force_keep_presets: ForceKeepPresets = _mirror("force_keep_presets")
    count_tokenizer: NonBlank | None = _mirror("count_tokenizer")


#: The mirrored fields of a compressing adapter (:class:`CompressionFields`).
MIRRORED: tuple[str, ...] = tuple(CompressionFields.model_fields)

#: The mirrored fields of an ingestion component (:class:`EncoderFields`).
ENCODER_MIRRORED: tuple[str, ...] = tuple(EncoderFields.model_fields)

#: The ``budget_scope`` values every adapter accepts: all but ``joint`` mean ``per_chunk``, so a
#: setting moves between frameworks (chunks, documents, nodes) unchanged.
ScopeName = Literal["joint", "per_chunk", "per_document", "per_node"]


def chunk_source(document: object, start: object) -> ChunkSource | None:
    """A :class:`~semtoken_rag.fingerprints.ChunkSource` from framework metadata, or ``None``;
    invalid values are ignored (a hint, never an error: the store verifies what it serves)."""
    name = document if isinstance(document, str) and document else None
    begin = start if isinstance(start, int) and not isinstance(start, bool) else None
    begin = begin if begin is not None and 0 <= begin <= MAX_START else None
    return None if name is None and begin is None else ChunkSource(name, begin)


def as_items(items: Any, kind: type, what: str) -> list[Any]:
    """``items`` as a list of ``kind`` objects (a single object or a string is refused).

    Raises:
        InvalidInputError: naming ``what`` and the offending type.
    """
    if isinstance(items, (str, bytes, kind, Mapping)) or not isinstance(items, Iterable):
        raise InvalidInputError(
            f"{what} must be a sequence of {kind.__name__} objects, got {type(items).__name__}"
        )
    out = list(items)
    for i, item in enumerate(out):
        if not isinstance(item, kind):
            raise InvalidInputError(f"{what}[{i}] is a {type(item).__name__}, not {kind.__name__}")
    return out


def config_from_fields(
    adapter: Any,
    budget_scope: str,
    engine_options: Mapping[str, Any],
    names: tuple[str, ...] = MIRRORED,
) -> SemTokenConfig:
    """The engine config an adapter's fields describe.

    Args:
        adapter: Any object with the mirrored fields as attributes.
        budget_scope: Adapter spelling of the scope (:data:`ScopeName`).
        engine_options: Any other flat :class:`SemTokenConfig` field (``unit``, ...).
        names: The mirrored field names the adapter has.

    Raises:
        ConfigError: unknown or doubly given options, or values the engine rejects.
    """
    values = {n: getattr(adapter, n) for n in names}
    clash = sorted(set(engine_options) & (set(names) | {"budget_scope"}))
    if clash:
        raise ConfigError(f"engine_options repeats adapter fields {clash}: set them directly")
    unknown = sorted(set(engine_options) - set(SemTokenConfig.flat_names()))
    if unknown:
        raise ConfigError(
            f"unknown engine_options {unknown}; valid: {sorted(SemTokenConfig.flat_names())}"
        )
    if budget_scope not in get_args(ScopeName):
        raise ConfigError(
            f"budget_scope must be one of {sorted(get_args(ScopeName))}, got {budget_scope!r}"
        )
    scope = "joint" if budget_scope == "joint" else "per_chunk"
    return SemTokenConfig(**dict(engine_options), **values, budget_scope=scope)


def fields_from_config(
    config: SemTokenConfig, per_scope: str, names: tuple[str, ...] = MIRRORED
) -> dict[str, Any]:
    """Adapter field values reproducing ``config`` (inverse of :func:`config_from_fields`): the
    mirrored fields, ``budget_scope`` in the adapter's spelling, and every other non-default
    field in ``engine_options``."""
    options = {k: v for k, v in config.diff().items() if k not in names and k != "budget_scope"}
    flat = config.to_dict()
    fields: dict[str, Any] = {name: flat[name] for name in names}
    fields["budget_scope"] = "joint" if config.budget.budget_scope == "joint" else per_scope
    fields["engine_options"] = options
    return fields


def adopt_engine(
    cls: type[A],
    engine: Compressor,
    per_scope: str | None,
    extra: Mapping[str, Any],
    store_dir: str | Path | None = None,
) -> A:
    """An adapter of ``cls`` wrapping ``engine`` (no second model): what ``from_engine`` builds.

    Args:
        cls: The adapter class.
        engine: A :class:`~semtoken_rag.Compressor`.
        per_scope: The adapter's spelling of ``per_chunk`` (see :func:`fields_from_config`), or
            ``None`` for an ingestion component (the encoder fields only).
        extra: The adapter's own fields (e.g. ``drop_empty``).
        store_dir: The directory ``engine.store`` was opened from, named instead of the store
            so the adapter can be pickled.

    Raises:
        ConfigError: ``extra`` sets what the engine decides (a config field or the store).
    """
    cfg = engine.config
    if per_scope is None:
        fields = {name: cfg.to_dict()[name] for name in ENCODER_MIRRORED}
        options = encoder_options(cfg).items()
        fields["engine_options"] = {k: v for k, v in options if k not in ENCODER_MIRRORED}
    else:
        fields = fields_from_config(cfg, per_scope)
    clash = sorted(set(extra) & {*fields, "store", "store_dir"})
    if clash:
        raise ConfigError(
            f"from_engine() takes {', '.join(clash)} from the engine (its config and store); "
            "pass only the adapter's own fields, or build the engine with what you want"
        )
    where = {"store": engine.store} if store_dir is None else {"store_dir": store_dir}
    obj = cls(**fields, **where, **extra)
    obj._slot.adopt(engine, None if store_dir is None else str(store_dir))
    return obj


def encoder_options(config: SemTokenConfig) -> dict[str, Any]:
    """The non-default encoder knobs of ``config`` by flat name (what ingestion must match)."""
    names = {flat for flat, (part, _) in FLAT.items() if part == "encoder"}
    return {k: v for k, v in config.diff().items() if k in names}


def chunk_metadata(chunk: ChunkResult, result: CompressionResult) -> dict[str, Any]:
    """JSON-ready metadata for one compressed chunk of ``result`` (offsets index the text the
    compressor *received*); with ``compression_ratio="auto"`` also the call's ``budget_choice``,
    since a framework user sees only the documents."""
    meta: dict[str, Any] = {
        "offsets": [[int(s), int(e)] for s, e in chunk.offsets],
        "original_tokens": int(chunk.original_tokens),
        "kept_tokens": int(chunk.kept_tokens),
        "ratio": float(chunk.ratio),
    }
    if result.budget_choice is not None:
        meta["budget_choice"] = result.budget_choice.as_dict()
    return meta
