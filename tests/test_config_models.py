"""The configuration as typed pydantic models: one declaration per knob, one error type.

Checks the contract of :mod:`semtoken_rag.config` / :mod:`semtoken_rag.config_base`: numpy
scalars accepted and made plain, bool / NaN / inf / unknown fields refused with a
:class:`ConfigError` naming the field (never pydantic's ``ValidationError``), frozen and
hashable models, flat names routed from the parts' declarations, choices derived from the
``Literal`` types, and the adapters' mirrored fields equal to the config's declarations.
"""

from __future__ import annotations

import argparse
import math
import typing
from typing import Any, get_args

import numpy as np
import pytest
from pydantic import ValidationError

from semtoken_rag import BudgetConfig, ConfigError, EncoderConfig, SelectionConfig, SemTokenConfig
from semtoken_rag.adapters import (
    ENCODER_MIRRORED,
    MIRRORED,
    CompressionFields,
    EncoderFields,
)
from semtoken_rag.config import FLAT, PARTS, ForceKeepPreset, config_field
from semtoken_rag.core.forcekeep import PRESET_PATTERNS

NUMBER_FIELDS = [
    "compression_ratio",
    "similarity_threshold",
    "entropy_threshold",
    "dedup_threshold",
    "force_keep_timeout",
    "relevance_weight",
]
INT_FIELDS = ["budget_tokens", "batch_size", "window_tokens", "max_unit_words", "min_fill_tokens"]


def _raises_config_error(build: Any, name: str) -> str:
    """Run ``build``; it must raise a one-line ConfigError naming ``name`` (no pydantic)."""
    with pytest.raises(ConfigError) as err:
        build()
    exc = err.value
    shown = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    assert not isinstance(exc, ValidationError) and not isinstance(shown, ValidationError)
    text = str(err.value)
    assert "\n" not in text and name in text, text
    return text


# -- numpy scalars, bool, NaN ---------------------------------------------------------------
def test_numpy_scalars_are_accepted_and_made_plain() -> None:
    cfg = SemTokenConfig(
        compression_ratio=np.float32(0.25),
        budget_tokens=np.int64(300),
        batch_size=np.int32(4),
        similarity_threshold=np.float64(0.5),
        fill_partial=np.bool_(False),
        progress=np.True_,
        cache_embeddings=np.bool_(False),
    )
    values = cfg.to_dict()
    for name, kind in [
        ("compression_ratio", float),
        ("budget_tokens", int),
        ("batch_size", int),
        ("similarity_threshold", float),
        ("fill_partial", bool),
        ("progress", bool),
        ("cache_embeddings", bool),
    ]:
        assert type(values[name]) is kind, name
    assert cfg.budget.budget_tokens == 300 and cfg.selection.fill_partial is False
    assert BudgetConfig(compression_ratio=np.float16(0.5)).compression_ratio == 0.5


@pytest.mark.parametrize("name", NUMBER_FIELDS + INT_FIELDS)
@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_bool_is_not_a_number(name: str, value: Any) -> None:
    text = _raises_config_error(lambda: SemTokenConfig(**{name: value}), name)
    assert "must be a number" in text or "must be an int" in text


@pytest.mark.parametrize("name", NUMBER_FIELDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), 10**400])
def test_non_finite_numbers_are_refused(name: str, value: Any) -> None:
    _raises_config_error(lambda: SemTokenConfig(**{name: value}), name)


@pytest.mark.parametrize("name", ["fill_partial", "progress", "cache_embeddings"])
@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_flags_take_only_bools(name: str, value: Any) -> None:
    _raises_config_error(lambda: SemTokenConfig(**{name: value}), f"{name} must be a bool")


def test_message_names_field_bound_and_value() -> None:
    text = _raises_config_error(lambda: SemTokenConfig(compression_ratio=2.0), "compression_ratio")
    assert text == "compression_ratio must be a number in (0, 1] or 'auto', got 2.0"
    text = _raises_config_error(lambda: SemTokenConfig(encoder_dtype="int8"), "encoder_dtype")
    assert text.startswith("encoder_dtype must be one of ('auto', 'float32'")
    assert "'int8'" in text


# -- unknown fields, parts, replace, frozen ---------------------------------------------------
@pytest.mark.parametrize("cls", [SemTokenConfig, EncoderConfig, SelectionConfig, BudgetConfig])
def test_unknown_field_is_refused(cls: type) -> None:
    text = _raises_config_error(lambda: cls(compresion_ratio=0.5), "compresion_ratio")
    assert "unknown configuration field" in text


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: EncoderConfig(model=3), "encoder_model"),
        (lambda: EncoderConfig(encoder_model=None), "encoder_model"),
        (lambda: EncoderConfig(dtype="fp8"), "encoder_dtype"),
        (lambda: EncoderConfig(window_tokens=16.0), "window_tokens"),
        (lambda: SelectionConfig(unit=["sentence"]), "unit"),
        (lambda: SelectionConfig(min_cluster_size=4, max_cluster_size=3), "min_cluster_size"),
        (lambda: BudgetConfig(force_keep=(1,)), "force_keep"),
        (lambda: BudgetConfig(force_keep_presets="phones"), "force_keep_presets"),
        (lambda: BudgetConfig(count_tokenizer=""), "count_tokenizer"),
        (lambda: SemTokenConfig().replace(unit="para"), "unit"),
        (lambda: SemTokenConfig().replace(nope=1), "nope"),
        (lambda: SemTokenConfig(encoder=BudgetConfig()), "encoder"),
        (lambda: BudgetConfig().replace(separator=None), "separator"),
        (lambda: EncoderConfig(model="a", encoder_model="b"), "encoder_model"),
    ],
)
def test_parts_and_replace_raise_config_errors(build: Any, name: str) -> None:
    _raises_config_error(build, name)


def test_frozen_hashable_comparable() -> None:
    cfg = SemTokenConfig(compression_ratio=0.4, force_keep=[r"\d+"])
    same = SemTokenConfig(budget=BudgetConfig(compression_ratio=0.4, force_keep=(r"\d+",)))
    assert cfg == same and hash(cfg) == hash(same) and len({cfg, same}) == 1
    assert cfg != SemTokenConfig() and cfg != cfg.replace(unit="word")
    with pytest.raises(ConfigError, match="frozen"):
        cfg.budget = BudgetConfig()  # type: ignore[misc]
    with pytest.raises(ConfigError, match="frozen"):
        cfg.budget.separator = "|"  # type: ignore[misc]


def test_a_loaded_model_object_is_an_encoder_model() -> None:
    class Loaded:  # stands for a SentenceTransformer / transformers model / embeddings wrapper
        pass

    model = Loaded()
    cfg = SemTokenConfig(encoder_model=model)
    assert cfg.encoder_model is model and cfg.encoder.model is model
    assert cfg == SemTokenConfig(encoder=EncoderConfig(model=model))


# -- flat names ----------------------------------------------------------------------------
def test_flat_names_are_routed_from_the_declarations() -> None:
    declared = {
        (info.alias or field): (part, field)
        for part, cls in PARTS.items()
        for field, info in cls.model_fields.items()
    }
    assert declared == FLAT
    assert FLAT["encoder_model"] == ("encoder", "model")
    assert FLAT["encoder_dtype"] == ("encoder", "dtype")
    assert SemTokenConfig.flat_names() == (*FLAT, "cache_embeddings")
    cfg = SemTokenConfig(encoder_dtype="float32", unit="word", separator="|")
    assert (cfg.encoder.dtype, cfg.selection.unit, cfg.budget.separator) == (
        "float32",
        "word",
        "|",
    )
    assert cfg.diff() == {"encoder_dtype": "float32", "unit": "word", "separator": "|"}


def test_seed_names_are_typed_properties() -> None:
    hints = {
        name: typing.get_type_hints(getattr(SemTokenConfig, name).fget)["return"]
        for name in ("compression_ratio", "similarity_threshold", "entropy_threshold")
    }
    assert hints == {
        "compression_ratio": float | str,
        "similarity_threshold": float,
        "entropy_threshold": float,
    }
    assert isinstance(SemTokenConfig.encoder_model, property)
    cfg = SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8, entropy_threshold=0.6)
    assert (cfg.compression_ratio, cfg.similarity_threshold, cfg.entropy_threshold) == (
        0.4,
        0.8,
        0.6,
    )


# -- choices derived from one declaration -------------------------------------------------
def test_force_keep_presets_are_declared_once() -> None:
    names = get_args(ForceKeepPreset)
    assert set(names) == set(PRESET_PATTERNS)
    assert all(name in str(config_field("force_keep_presets").description) for name in names)
    from semtoken_rag.cli import compress

    parser = argparse.ArgumentParser()
    compress.register(parser)
    action = next(a for a in parser._actions if a.dest == "preset_keep")
    assert tuple(action.choices or ()) == names


# -- adapters' mirrored fields -------------------------------------------------------------
@pytest.mark.parametrize("name", MIRRORED)
def test_mirrored_fields_never_drift_from_the_config(name: str) -> None:
    """Type (with its validators), default and description of every adapter field equal the
    config's declaration, so the adapters cannot disagree with the engine."""
    part, field = FLAT[name]
    want = typing.get_type_hints(PARTS[part], include_extras=True)[field]
    got = typing.get_type_hints(CompressionFields, include_extras=True)[name]
    assert got == want
    declared, mirrored = config_field(name), CompressionFields.model_fields[name]
    assert mirrored.default == declared.default
    assert mirrored.description == declared.description and declared.description
    assert mirrored.annotation == declared.annotation


def test_mirrored_field_sets() -> None:
    assert set(MIRRORED) == {
        "compression_ratio",
        "min_ratio",
        "max_ratio",
        "max_tokens",
        "budget_tokens",
        "similarity_threshold",
        "entropy_threshold",
        "encoder_model",
        "dedup_threshold",
        "force_keep",
        "force_keep_presets",
        "count_tokenizer",
        "device",
    }
    assert ENCODER_MIRRORED == ("encoder_model", "device")
    assert tuple(EncoderFields.model_fields) == ENCODER_MIRRORED


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"compression_ratio": True}, "compression_ratio"),
        ({"compression_ratio": math.nan}, "compression_ratio"),
        ({"budget_tokens": 2.5}, "budget_tokens"),
        ({"force_keep": 5}, "force_keep"),
        ({"force_keep_presets": ["phone"]}, "force_keep_presets"),
        ({"device": "tpu"}, "device"),
        ({"nope": 1}, "nope"),
    ],
)
def test_mixin_raises_config_error(bad: dict[str, Any], name: str) -> None:
    text = _raises_config_error(lambda: CompressionFields(**bad), name)
    if name == "compression_ratio":
        assert "in (0, 1]" in text  # described by the config's declaration, bounds included
    fields = CompressionFields(compression_ratio=np.float32(0.5), force_keep="x")
    assert fields.compression_ratio == 0.5 and fields.force_keep == ("x",)


def test_model_dump_round_trips_through_model_validate() -> None:
    """pydantic's own round trip (a config saved as a dict or JSON, loaded back) gives the same
    config; a part given as a mapping is validated like one given as a model."""
    from semtoken_rag import SemTokenConfig

    config = SemTokenConfig(compression_ratio=0.4, similarity_threshold=0.8, device="cpu")
    assert SemTokenConfig.model_validate(config.model_dump()) == config
    assert SemTokenConfig.model_validate_json(config.model_dump_json()) == config
    assert SemTokenConfig(budget={"compression_ratio": 0.3}).compression_ratio == 0.3
    with pytest.raises(ConfigError, match="compression_ratio must be"):
        SemTokenConfig(budget={"compression_ratio": 3})


@pytest.mark.parametrize(
    ("load", "data", "name"),
    [
        (SemTokenConfig.model_validate, {"budget": {"compression_ratio": 3}}, "compression_ratio"),
        (SemTokenConfig.model_validate, {"compression_ratio": 3}, "compression_ratio"),
        (SemTokenConfig.model_validate, {"nope": 1}, "nope"),
        (SemTokenConfig.model_validate, "default", "configuration"),
        (SemTokenConfig.model_validate_json, '{"budget": {"budget_tokens": 0}}', "budget_tokens"),
        (SemTokenConfig.model_validate_json, "{", "Invalid JSON"),
        (EncoderConfig.model_validate, {"batch_size": 0}, "batch_size"),
        (EncoderConfig.model_validate, {"context_window": 100}, "context_window"),
        (SelectionConfig.model_validate_json, '{"unit": "page"}', "unit"),
        (BudgetConfig.model_validate, {"force_keep": ["("]}, "force_keep"),
    ],
)
def test_a_bad_loaded_config_is_a_config_error(load: Any, data: Any, name: str) -> None:
    """A config loaded from a dict or JSON fails like a constructed one: one ConfigError line
    naming the field (was pydantic's multi-line ValidationError)."""
    _raises_config_error(lambda: load(data), name)


def test_model_copy_validates_its_update() -> None:
    """``model_copy(update=...)`` is validated like ``replace`` (pydantic stored the update
    unchecked: a config no constructor accepts, failing only inside a later call)."""
    config = SemTokenConfig(compression_ratio=0.4)
    _raises_config_error(lambda: config.model_copy(update={"cache_embeddings": "yes"}), "cache")
    _raises_config_error(lambda: config.model_copy(update={"encoder": {"device": "x"}}), "device")
    _raises_config_error(
        lambda: config.budget.model_copy(update={"compression_ratio": 7}), "compression_ratio"
    )
    copied = config.model_copy(update={"similarity_threshold": 0.8}, deep=True)
    assert copied == config.replace(similarity_threshold=0.8)
    assert config.model_copy() == config and config.model_copy(deep=True) == config


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SemTokenConfig.preset(["default"]), "unknown preset"),
        (lambda: SemTokenConfig().diff({}), "diff compares with a SemTokenConfig"),
        (lambda: SemTokenConfig().diff("default"), "diff compares with a SemTokenConfig"),
    ],
)
def test_preset_and_diff_refuse_what_is_not_a_name_or_a_config(call: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        call()


@pytest.mark.parametrize("part", ["encoder", "selection", "budget"])
def test_a_part_given_as_a_mapping_with_a_non_str_key_is_a_config_error(part: str) -> None:
    with pytest.raises(ConfigError, match=f"{part} keys must be field names"):
        SemTokenConfig(**{part: {1: 1}})  # was TypeError: keywords must be strings
