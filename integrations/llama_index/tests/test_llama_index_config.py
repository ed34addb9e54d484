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


@pytest.mark.parametrize("cls", [SemTokenNodePostprocessor, SemTokenFingerprinter])
def test_a_path_encoder_model_is_kept_as_a_str(cls: type, tmp_path: Any) -> None:
    """``encoder_model`` is documented as an id or a path: a ``Path`` is kept as its str, so
    ``to_json`` works and the engine loads it (a ``Path`` reached the encoder unconverted)."""
    component = cls(encoder_model=tmp_path / "model", store_dir=tmp_path / "fp")
    assert component.encoder_model == str(tmp_path / "model")
    assert cls.from_json(component.to_json()).encoder_model == str(tmp_path / "model")
    assert component.semtoken_config().encoder.model == str(tmp_path / "model")


def test_the_fingerprinter_of_a_store_dir_postprocessor_can_be_pickled(tmp_path: Any) -> None:
    """``IngestionPipeline.run(num_workers=N)`` pickles its transformations into worker
    processes: ``postprocessor.fingerprinter()`` names the store by its directory (it passed
    the store object, which LlamaIndex dropped, leaving a component without its engine slot:
    an ``AttributeError`` in the workers); a store object is refused with a typed error."""
    import pickle

    from semtoken_rag.store import FingerprintStore

    post = SemTokenNodePostprocessor(store_dir=tmp_path / "fp")
    fingerprinter = post.fingerprinter()
    assert fingerprinter.store_dir == post.store_dir and fingerprinter.engine is post.engine
    clone = pickle.loads(pickle.dumps(fingerprinter))
    assert clone.model_dump() == fingerprinter.model_dump()
    assert clone.engine is not post.engine and clone.engine.store.path == tmp_path / "fp"
    clone.engine.store.close()
    post.engine.store.close()
    with FingerprintStore() as store, pytest.raises(ConfigError, match="store_dir="):
        pickle.dumps(SemTokenFingerprinter(store=store))


async def test_async_postprocessing_builds_the_engine_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first call builds the engine (a model load, a store that may wait for another
    process's lock): ``apostprocess_nodes`` must do that in a worker thread too."""
    import threading

    from llama_index.core.schema import NodeWithScore, TextNode
    from semtoken_rag.adapters import EngineSlot

    threads: list[int] = []

    def get(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        raise RuntimeError("engine requested")

    monkeypatch.setattr(EngineSlot, "get", get)
    nodes = [NodeWithScore(node=TextNode(text="Hi there."), score=1.0)]
    with pytest.raises(RuntimeError, match="engine requested"):
        await SemTokenNodePostprocessor().apostprocess_nodes(nodes, query_str="q")
    assert threads and threading.get_ident() not in threads


@pytest.mark.parametrize("cls", [SemTokenNodePostprocessor, SemTokenFingerprinter])
def test_an_empty_store_dir_is_refused_not_the_current_directory(
    cls: type, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Path("")`` is the current directory: ``store_dir=""`` must not write a store wherever
    the process runs (``FingerprintStore(path="")`` refuses it), at construction or at the
    engine's build after an assignment."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="store_dir must name a directory, got ''"):
        cls(store_dir="")
    component = cls(store_dir=tmp_path / "fp")
    component.store_dir = ""
    with pytest.raises(ConfigError, match="store_dir must name a directory, got ''"):
        component.engine  # noqa: B018
    with pytest.raises(ConfigError, match="store_dir"):  # pydantic's lax mode decoded it
        cls(store_dir=b"fp")
    component.store_dir = b"fp"  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="store_dir must be a str or a Path, got bytes"):
        component.engine  # noqa: B018
    assert list(tmp_path.iterdir()) == []


def test_the_fingerprinter_of_a_postprocessor_without_a_store_is_refused_at_once() -> None:
    """Like ``SemTokenFingerprinter()``, ``postprocessor.fingerprinter()`` on the in-memory
    cache (which ingestion cannot write to) is refused when built, not inside the pipeline."""
    from semtoken_rag.store import FingerprintStore

    with pytest.raises(ConfigError, match="SemTokenFingerprinter cannot write to store="):
        SemTokenNodePostprocessor().fingerprinter()
    with FingerprintStore() as store:
        post = SemTokenNodePostprocessor(store=store)
        assert post.fingerprinter().engine is post.engine


@pytest.mark.parametrize("cls", [SemTokenNodePostprocessor, SemTokenFingerprinter])
def test_model_dump_loads_back_and_a_bad_dump_is_a_config_error(cls: type, tmp_path: Any) -> None:
    """A LlamaIndex component's ``model_dump()`` carries its ``class_name``: the dump loads
    back (constructor, ``model_validate``, ``model_validate_json``), as ``to_dict`` does; a bad
    value or another class's name in it is a ``ConfigError``, as at construction."""
    component = cls(store_dir=tmp_path / "fp", engine_options={"batch_size": 8})
    dump = component.model_dump()
    assert dump["class_name"] == cls.class_name()
    for clone in (
        cls(**dump),
        cls.model_validate(dump),
        cls.model_validate_json(component.model_dump_json()),
    ):
        assert clone.model_dump() == dump
    bad_dumps = (({**dump, "device": 5}, "device"), ({**dump, "class_name": "X"}, "class_name"))
    for bad, name in bad_dumps:
        with pytest.raises(ConfigError, match=name):
            cls.model_validate(bad)
    with pytest.raises(ConfigError, match="JSON"):
        cls.model_validate_json('{"device": ')
