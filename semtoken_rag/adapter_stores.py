"""Where an adapter's fingerprints live: the ``store`` / ``store_dir`` fields, checked and opened.

Split from :mod:`semtoken_rag.adapters` so that each module stays one concept: the adapters'
fields and engine there, the store they read and write here (the adapter packages import both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainSerializer, Strict

from semtoken_rag.errors import ConfigError
from semtoken_rag.protocols import FingerprintStoreProtocol

#: The adapters' ``store_dir`` field: a ``str`` or a ``Path``, serialised as a ``str`` (a
#: ``Path`` is not JSON, and LlamaIndex's ``to_json`` / LangChain's ``dumps`` write plain data).
#: Strict: pydantic would otherwise decode ``b"fp"`` to ``"fp"``.
StoreDir = Annotated[
    Annotated[str, Strict()] | Path | None,
    PlainSerializer(lambda v: None if v is None else str(v), return_type=str | None),
]


def require_store(store: Any, store_dir: str | Path | None, component: str) -> None:
    """Raise :class:`ConfigError` unless an ingestion component has a place to write (the
    default in-memory cache of a compressor is gone when the process ends, and one handed on by
    ``compressor.ingestor()`` / ``postprocessor.fingerprinter()`` cannot be written to)."""
    check_store(store, store_dir)
    if store is None and store_dir is None:
        raise ConfigError(
            f"{component} needs store_dir= (or store=, a FingerprintStore) to write the "
            "fingerprints to; the compressor must read the same store"
        )
    if store is not None and not callable(getattr(store, "write", None)):
        raise ConfigError(
            f"{component} cannot write to store={type(store).__name__} (an in-memory cache): "
            "give store_dir= or store=FingerprintStore(...), which the compressor reads too"
        )


def check_store(store: Any, store_dir: str | Path | None) -> None:
    """Reject a store without the protocol, a store and a directory given together, or an
    empty ``store_dir`` (``Path("")`` is the current directory: the store's files would land
    wherever the process was started, where :class:`~semtoken_rag.store.FingerprintStore`
    itself refuses ``path=""``).

    The methods required are those :class:`~semtoken_rag.protocols.FingerprintStoreProtocol`
    declares, read from it, so this check follows the protocol.
    """
    if store is not None and store_dir is not None:
        raise ConfigError("give either store= or store_dir=, not both")
    if store_dir is not None and not isinstance(store_dir, str | Path):  # set after construction
        raise ConfigError(f"store_dir must be a str or a Path, got {type(store_dir).__name__}")
    if isinstance(store_dir, str) and not store_dir:
        raise ConfigError(f"store_dir must name a directory, got {store_dir!r} (None: in memory)")
    methods = [n for n in vars(FingerprintStoreProtocol) if not n.startswith("_")]
    if store is not None and not all(callable(getattr(store, n, None)) for n in methods):
        raise ConfigError(
            f"store must implement {'/'.join(methods)} (FingerprintStoreProtocol), "
            f"got {type(store).__name__}"
        )


def open_store(store: Any, store_dir: str | Path | None) -> Any:
    """The store object to hand the engine (``None``: the engine's in-memory default).

    A directory opens a persistent :class:`semtoken_rag.store.FingerprintStore`, imported only
    here so that FAISS loads only for users who asked for a persistent store.
    """
    if store is not None:
        return store
    check_store(None, store_dir)  # a field set after construction is checked here
    if store_dir is None:
        return None
    from semtoken_rag.store import FingerprintStore

    return FingerprintStore(path=Path(store_dir).expanduser())
