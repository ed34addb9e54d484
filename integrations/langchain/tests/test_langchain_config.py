"""``SemTokenCompressor``'s fields: typed, declared once (in ``semtoken_rag.adapters``), and
every invalid value is a ``semtoken_rag.ConfigError`` (never pydantic's ``ValidationError``).
No model is loaded here: constructing the compressor builds no engine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from semtoken_rag import ConfigError, SemTokenConfig
from semtoken_rag.adapters import MIRRORED, CompressionFields
from semtoken_rag.config import config_field

from langchain_semtoken import SemTokenCompressor, SemTokenIngestor


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"compression_ratio": 1.5}, "compression_ratio"),
        ({"compression_ratio": True}, "compression_ratio"),
        ({"similarity_threshold": math.nan}, "similarity_threshold"),
        ({"budget_tokens": 0}, "budget_tokens"),
        ({"budget_tokens": "10"}, "budget_tokens"),
        ({"device": "tpu"}, "device"),
        ({"encoder_model": 7}, "encoder_model"),
        ({"force_keep": ["("]}, "force_keep"),
        ({"force_keep_presets": ["phone"]}, "force_keep_presets"),
        ({"count_tokenizer": " "}, "count_tokenizer"),
        ({"budget_scope": "global"}, "budget_scope"),
        ({"engine_options": {"unit": "paragraph"}}, "unit"),
        ({"engine_options": {"nope": 1}}, "nope"),
        ({"no_such_field": 1}, "no_such_field"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(bad: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError) as err:
        SemTokenCompressor(**bad)
    exc = err.value
    assert not isinstance(exc.__cause__ or exc.__context__, ValidationError) or (
        exc.__suppress_context__ and exc.__cause__ is None
    )
    assert name in str(exc) and "\n" not in str(exc)


def test_mirrored_fields_are_declared_fields_with_the_config_defaults() -> None:
    assert issubclass(SemTokenCompressor, CompressionFields)
    fields = SemTokenCompressor.model_fields
    for name in MIRRORED:
        assert fields[name].default == config_field(name).default
        assert fields[name].description == config_field(name).description
    schema = SemTokenCompressor.model_json_schema()["properties"]
    assert set(MIRRORED) <= set(schema)  # visible to API docs
    comp = SemTokenCompressor(compression_ratio=np.float32(0.25), budget_tokens=np.int64(80))
    assert comp.semtoken_config() == SemTokenConfig(compression_ratio=0.25, budget_tokens=80)


def test_changed_store_or_encoder_fields_rebuild_the_engine(tmp_path: Any) -> None:
    """The engine follows the fields: another ``store_dir`` or ``store`` is used, not silently
    ignored; an ingestor rebuilds for other encoder fields but keeps an adopted engine whose
    encoder part its fields describe (engines build no model until they encode)."""
    from semtoken_rag.store import FingerprintStore

    comp = SemTokenCompressor(store_dir=tmp_path / "a")
    first = comp.engine
    assert comp.engine is first
    comp.store_dir = tmp_path / "b"
    assert comp.engine is not first and comp.engine.store.path == tmp_path / "b"
    with FingerprintStore() as store:
        comp.store_dir, comp.store = None, store
        assert comp.engine.store is store
        ingestor = comp.ingestor()
        assert ingestor.engine is comp.engine  # adopted: same encoder settings, same store
        ingestor.device = "cpu"
        assert ingestor.engine is not comp.engine and ingestor.engine.config.encoder.device == "cpu"
    for engine in (first, comp.engine):
        if engine.store is not None and hasattr(engine.store, "close"):
            engine.store.close()


def test_a_copy_has_its_own_engine_slot() -> None:
    """A copy with other fields builds its own engine; the original keeps the one it adopted.
    A deep copy works (the engine, holding locks and a store, is shared, not copied)."""
    import copy

    engine = SemTokenCompressor(compression_ratio=0.4).engine
    original = SemTokenCompressor.from_engine(engine)
    clone = original.model_copy(update={"compression_ratio": 0.7})
    assert clone.engine is not engine and clone.engine.config.compression_ratio == 0.7
    assert original.engine is engine
    for other in (copy.deepcopy(original), original.model_copy(deep=True)):
        assert other.engine is engine


@pytest.mark.parametrize("start", [-1, 2**63, True, "35", 1.5, None])
def test_a_framework_offset_the_store_cannot_use_is_no_hint(start: Any) -> None:
    """Metadata is a hint, never an error: an offset that is not an int in [0, 2**63) is
    dropped (the store refuses such a ``ChunkSource`` from a direct caller)."""
    from semtoken_rag.adapters import chunk_source

    assert chunk_source("doc", start) == chunk_source("doc", None)
    assert chunk_source("doc", 2**63 - 1) is not None


@pytest.mark.parametrize(
    "extra",
    [
        {"budget_scope": "per_document"},
        {"compression_ratio": 0.3},
        {"engine_options": {}},
        {"store_dir": "elsewhere"},
        {"store": None},
    ],
)
def test_from_engine_refuses_what_the_engine_decides(extra: dict[str, Any]) -> None:
    """``from_engine`` takes the config and the store from the engine: a kwarg setting one of
    them is a one-line ``ConfigError`` naming it (it was a raw ``TypeError``, a keyword given
    twice); the adapter's own fields pass."""
    from langchain_semtoken import SemTokenIngestor

    engine = SemTokenCompressor(compression_ratio=0.4).engine
    name = next(iter(extra))
    for adapter in (SemTokenCompressor, SemTokenIngestor):
        with pytest.raises(ConfigError, match=name) as err:
            adapter.from_engine(engine, **extra)
        assert "\n" not in str(err.value)
    kept = SemTokenCompressor.from_engine(engine, drop_empty=False)
    assert kept.drop_empty is False and kept.engine is engine


def test_pickled_with_store_dir_refused_with_a_store_object(tmp_path: Any) -> None:
    """A compressor and its ingestor travel to another process by their fields (the engine,
    holding a model, locks and a database, is rebuilt there); a store object cannot travel, and
    the error says to give ``store_dir=``."""
    import pickle

    from semtoken_rag.store import FingerprintStore

    comp = SemTokenCompressor(store_dir=tmp_path / "fp", compression_ratio=0.3)
    engine = comp.engine
    ingestor = comp.ingestor()
    assert ingestor.store_dir == comp.store_dir and ingestor.engine is engine  # adopted
    for adapter in (comp, ingestor):
        copy = pickle.loads(pickle.dumps(adapter))
        assert copy.model_dump() == adapter.model_dump()
        assert copy.engine is not engine and copy.engine.store.path == tmp_path / "fp"
        copy.engine.store.close()
    engine.store.close()
    with FingerprintStore() as store, pytest.raises(ConfigError, match="store_dir="):
        pickle.dumps(SemTokenCompressor(store=store))


async def test_async_compression_builds_and_runs_the_engine_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first call builds the engine (a model load, a store that may wait for another
    process's lock): ``acompress_documents`` must do that in a worker thread too."""
    import threading

    from langchain_core.documents import Document
    from semtoken_rag.adapters import EngineSlot

    threads: list[int] = []

    def get(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        raise RuntimeError("engine requested")

    monkeypatch.setattr(EngineSlot, "get", get)
    with pytest.raises(RuntimeError, match="engine requested"):
        await SemTokenCompressor().acompress_documents([Document(page_content="Hi.")], "q")
    assert threads and threading.get_ident() not in threads


@pytest.mark.parametrize("cls", [SemTokenCompressor, SemTokenIngestor])
def test_an_empty_store_dir_is_refused_not_the_current_directory(
    cls: type, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Path("")`` is the current directory: ``store_dir=""`` (an unset environment variable)
    must not write a store wherever the process runs, as ``FingerprintStore(path="")`` refuses.
    Set after construction, it is refused when the engine is built."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="store_dir must name a directory, got ''"):
        cls(store_dir="")
    adapter = cls(store_dir=tmp_path / "fp")
    adapter.store_dir = ""
    with pytest.raises(ConfigError, match="store_dir must name a directory, got ''"):
        adapter.engine  # noqa: B018
    with pytest.raises(ConfigError, match="store_dir"):  # pydantic's lax mode decoded it
        cls(store_dir=b"fp")
    adapter.store_dir = b"fp"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="store_dir must be a str or a Path, got bytes"):
        adapter.engine  # noqa: B018
    assert list(tmp_path.iterdir()) == []


def test_the_ingestor_of_a_compressor_without_a_store_is_refused_at_once() -> None:
    """``SemTokenIngestor()`` without a store is refused at construction; so is the one
    ``compressor.ingestor()`` would build on the compressor's in-memory cache (it cannot be
    written to), instead of failing at the first ``transform_documents``."""
    from semtoken_rag.store import FingerprintStore

    comp = SemTokenCompressor()
    with pytest.raises(ConfigError, match="SemTokenIngestor cannot write to store="):
        comp.ingestor()
    with pytest.raises(ConfigError, match="cannot write to store=MemoryFingerprintCache"):
        SemTokenIngestor(store=comp.engine.store)
    with FingerprintStore() as store:  # an in-memory FingerprintStore can be written to
        assert SemTokenCompressor(store=store).ingestor().engine.store is store


@pytest.mark.parametrize("cls", [SemTokenCompressor, SemTokenIngestor])
def test_model_validate_loads_a_dump_and_refuses_a_bad_one_with_a_config_error(
    cls: type, tmp_path: Any
) -> None:
    """pydantic's loading (``model_validate``, ``model_validate_json``) fails as the constructor
    does: a ``ConfigError`` naming the field, never pydantic's ``ValidationError``."""
    adapter = cls(store_dir=tmp_path / "fp", device="cpu")
    dump = adapter.model_dump()
    assert cls.model_validate(dump).model_dump() == dump
    assert cls.model_validate_json(adapter.model_dump_json()).model_dump() == dump
    for bad, name in (({**dump, "device": "tpu"}, "device"), ({**dump, "nope": 1}, "nope")):
        with pytest.raises(ConfigError, match=name):
            cls.model_validate(bad)
    with pytest.raises(ConfigError, match="JSON"):
        cls.model_validate_json('{"device": ')
