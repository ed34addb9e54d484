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
