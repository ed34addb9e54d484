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

from langchain_semtoken import SemTokenCompressor


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
