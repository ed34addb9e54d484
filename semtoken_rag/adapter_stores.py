"""Where an adapter's fingerprints live: the ``store``/``store_dir`` fields, checked and opened."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainSerializer, Strict

from semtoken_rag.errors import ConfigError
from semtoken_rag.protocols import FingerprintStoreProtocol

#: The adapters' ``store_dir`` field: a ``str`` or ``Path``, serialised as ``str`` (frameworks
#: dump plain data); strict, else pydantic decodes ``b"fp"`` to ``"fp"``.
StoreDir = Annotated[
    Annotated[str, Strict()] | Path | None,
    PlainSerializer(lambda v: None if v is None else str(v), return_type=str | None),
]


def require_store(store: Any, store_dir: str | Path | None, component: str) -> None:
    """Raise :class:`ConfigError` unless an ingestion component has a writable store (an
    in-memory cache is gone when the process ends)."""
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
    """Reject a store lacking the methods of
    :class:`~semtoken_rag.protocols.FingerprintStoreProtocol` (read from it), a store and a
    directory together, or an empty ``store_dir`` (files would land where the process started)."""
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

    A directory opens a :class:`semtoken_rag.store.FingerprintStore`, imported only here (FAISS)."""
    if store is not None:
        return store
    check_store(None, store_dir)  # a field set after construction is checked here
    if store_dir is None:
        return None
    from semtoken_rag.store import FingerprintStore

    return FingerprintStore(path=Path(store_dir).expanduser())
