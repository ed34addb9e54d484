"""The seed README's Quick Start runs as written (import name semtoken_rag), and the CLI works."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from semtoken_rag import ConfigError, SemToken, SemTokenConfig
from semtoken_rag.cli.main import main

TEXT = """
Natural language processing is a field of artificial intelligence.
Natural language processing involves computational linguistics.
Machine learning models require large amounts of training data.
Machine learning algorithms learn patterns from data.
"""


@pytest.fixture(scope="module")
def semtoken() -> SemToken:
    return SemToken()


@pytest.mark.slow
def test_basic_usage(semtoken: SemToken) -> None:
    result = semtoken.tokenize(TEXT)
    stats = result["compression_stats"]
    assert stats["original_count"] > stats["compressed_count"] > 0
    assert 0 < stats["compression_ratio"] <= 0.55
    assert stats["theoretical_speedup"] == pytest.approx(1 / stats["compression_ratio"])
    for (s, e), piece in zip(result["offsets"], result["compressed_text"].split(" … ")):
        assert TEXT[s:e] == piece


@pytest.mark.slow
def test_advanced_configuration() -> None:
    config = SemTokenConfig(
        compression_ratio=0.4,
        similarity_threshold=0.8,
        entropy_threshold=0.6,
        encoder_model="sentence-transformers/all-MiniLM-L6-v2",
    )
    result = SemToken(config=config).tokenize(TEXT)
    assert result["compression_stats"]["compression_ratio"] <= 0.45


@pytest.mark.slow
def test_query_aware_keeps_relevant(semtoken: SemToken) -> None:
    document = (
        "Deep learning uses neural networks with many layers to learn representations. "
        "The weather in Lisbon was sunny for most of the week. "
        "Football clubs sold more tickets than last season. "
        "Deep learning models are trained with gradient descent on large datasets."
    )
    result = semtoken.tokenize(document, query="What is deep learning?")
    assert "neural networks" in result["compressed_text"]
    assert "Football" not in result["compressed_text"]


@pytest.mark.slow
def test_batch_processing(semtoken: SemToken) -> None:
    documents = [
        "Document 1 about artificial intelligence. It covers search and planning.",
        "Document 2 about machine learning. It covers regression and classification.",
        "Document 3 about natural language processing. It covers parsing and translation.",
    ]
    batch = semtoken.batch_process(documents)
    assert len(batch) == 3
    assert all(r["compressed_text"] for r in batch)
    assert [r["compressed_text"] for r in batch] == [
        semtoken.tokenize(d)["compressed_text"] for d in documents
    ]


@pytest.mark.slow
def test_hf_tokenizer_counts_in_its_tokens() -> None:
    from transformers import AutoTokenizer

    from semtoken_rag.models import packaged_encoder_dir

    tok = AutoTokenizer.from_pretrained(str(packaged_encoder_dir()))
    result = SemToken(tokenizer=tok).tokenize(TEXT)
    assert result["compression_stats"]["original_count"] == len(
        tok(TEXT, add_special_tokens=False)["input_ids"]
    )


@pytest.mark.parametrize("tokenizer", [str.split, lambda text: text.split(), 42])
def test_a_tokenizer_that_is_not_a_hugging_face_one_is_refused_at_construction(
    tokenizer: object,
) -> None:
    """Any callable passed the old check and failed on the first call inside the counter
    (``TypeError: 'add_special_tokens' is an invalid keyword argument``)."""
    with pytest.raises(ConfigError, match="tokenizer must be a Hugging Face tokenizer"):
        SemToken(tokenizer=tokenizer)


def test_presets() -> None:
    assert SemTokenConfig.conservative().compression_ratio == 0.7
    assert SemTokenConfig.aggressive().compression_ratio == 0.3


@pytest.mark.slow
def test_cli_compress_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TEXT, encoding="utf-8")
    assert main(["compress", str(f), "--query", "What is NLP?", "--ratio", "0.5", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    chunk = payload["chunks"][0]
    assert payload["kept_tokens"] <= payload["original_tokens"]
    for s, e in chunk["offsets"]:
        assert TEXT[s:e] in chunk["text"]


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_cli_compress_reads_dash_as_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``-`` names stdin, alone or among files (was "no such file: -", exit 2)."""
    from semtoken_rag.cli.compress import _read_inputs, _source
    from semtoken_rag.errors import InvalidInputError

    f = tmp_path / "a.txt"
    f.write_text("From a file.", encoding="utf-8")
    _stdin(monkeypatch, b"From stdin.")
    assert _read_inputs(["-"]) == ["From stdin."]
    _stdin(monkeypatch, b"From stdin.")
    assert _read_inputs([str(f), "-"]) == ["From a file.", "From stdin."]
    args = argparse.Namespace(files=[str(f), "-"])
    assert [_source(args, i) for i in range(2)] == [str(f), "<stdin>"]
    with pytest.raises(InvalidInputError, match="more than once"):
        _read_inputs(["-", "-"])
    _stdin(monkeypatch, b"  \n")
    with pytest.raises(InvalidInputError, match="nothing to compress: the files hold no text"):
        _read_inputs(["-"])
    _stdin(monkeypatch, b"  \n")
    with pytest.raises(InvalidInputError, match="nothing to compress: stdin holds no text"):
        _read_inputs([])  # was "stdin hold"


@pytest.mark.slow
def test_cli_compress_dash_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _stdin(monkeypatch, TEXT.encode("utf-8"))
    assert main(["compress", "-", "--ratio", "0.5", "--json"]) == 0
    chunk = json.loads(capsys.readouterr().out)["chunks"][0]
    assert chunk["source"] == "<stdin>" and chunk["text"]


@pytest.mark.parametrize(
    ("option", "name"),
    [("--device", "device"), ("--encoder", "encoder_model"), ("--count-tokenizer", "tokenizer")],
)
def test_cli_compress_refuses_an_empty_option_value(
    option: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--device ""`` (an unset shell variable) is refused like ``ingest`` refuses it, before
    any model loads (it was silently replaced by the default)."""
    assert main(["compress", "README.md", option, ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and name in err and len(err.splitlines()) == 1, err


def test_cli_missing_file_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", "/nonexistent/file.txt"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_writes_heatmap(tmp_path: Path) -> None:
    out = tmp_path / "heat.png"
    proc = subprocess.run(
        [sys.executable, "-m", "semtoken_rag.cli.main", "demo", "--heatmap", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ORIGINAL" in proc.stdout and "achieved ratio" in proc.stdout
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
