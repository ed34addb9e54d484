"""The LlamaIndex components' fields: typed, declared once (in ``semtoken_rag.adapters``), and
every invalid value is a ``semtoken_rag.ConfigError`` (never pydantic's ``ValidationError``).
No model is loaded here: constructing a component builds no engine."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from semtoken_rag import ConfigError
from semtoken_rag.adapters import ENCODER_MIRRORED, MIRRORED, CompressionFields, EncoderFields

from llama_index.postprocessor.semtoken import SemTokenFingerprinter, SemTokenNodePostprocessor


def _config_error(cls: type, bad: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError) as err:
        cls(**bad)
    exc = err.value
    assert not isinstance(exc.__cause__ or exc.__context__, ValidationError) or (
        exc.__suppress_context__ and exc.__cause__ is None
    )
    assert name in str(exc) and "\n" not in str(exc)


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"compression_ratio": 0}, "compression_ratio"),
        ({"entropy_threshold": False}, "entropy_threshold"),
        ({"dedup_threshold": 3.0}, "dedup_threshold"),
        ({"force_keep": 5}, "force_keep"),
        ({"budget_scope": "per_paragraph"}, "budget_scope"),
        ({"device": "gpu"}, "device"),
        ({"engine_options": {"window_tokens": 8}}, "window_tokens"),
        ({"nope": 1}, "nope"),
    ],
)
def test_postprocessor_raises_config_error(bad: dict[str, Any], name: str) -> None:
    _config_error(SemTokenNodePostprocessor, bad, name)


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"encoder_model": ["x"]}, "encoder_model"),
        ({"device": "cuda:x"}, "device"),
        ({"compression_ratio": 0.5}, "compression_ratio"),  # not mirrored here
        ({"engine_options": {"batch_size": 0}}, "batch_size"),
    ],
)
def test_fingerprinter_raises_config_error(bad: dict[str, Any], name: str, tmp_path: Any) -> None:
    _config_error(SemTokenFingerprinter, {"store_dir": str(tmp_path), **bad}, name)


def test_fingerprinter_needs_a_store() -> None:
    """Fingerprints written to the in-memory cache would be gone after ingestion."""
    with pytest.raises(ConfigError, match="needs store_dir"):
        SemTokenFingerprinter()


def test_components_inherit_the_declared_fields() -> None:
    assert issubclass(SemTokenNodePostprocessor, CompressionFields)
    assert issubclass(SemTokenFingerprinter, EncoderFields)
    assert not issubclass(SemTokenFingerprinter, CompressionFields)
    assert set(MIRRORED) <= set(SemTokenNodePostprocessor.model_fields)
    mirrored = set(SemTokenFingerprinter.model_fields) & set(MIRRORED)
    assert mirrored == set(ENCODER_MIRRORED) == {"encoder_model", "device"}


@pytest.mark.parametrize("cls", [SemTokenNodePostprocessor, SemTokenFingerprinter])
def test_a_path_store_dir_round_trips_through_json(cls: type, tmp_path: Any) -> None:
    """``store_dir`` given as a ``Path`` (as ``tmp_path`` is) serialises as a str, so
    LlamaIndex's ``to_json`` / ``from_json`` work (nothing is opened: no engine is built)."""
    component = cls(store_dir=tmp_path / "fp")
    clone = cls.from_json(component.to_json())
    assert clone.store_dir == str(tmp_path / "fp") and not (tmp_path / "fp").exists()
