"""Hostile but fair input, by class: every call ends in a typed ``SemTokenError`` whose message
names the bad value, or in the documented safe result.  Never an untyped crash from numpy,
torch, tokenizers or re; never a hang.

Classes (issue 11): text the tokenizer cannot take; force-keep patterns; budgets and counts;
the seed API; the evaluation loader; the CLI.  Store errors: tests/test_store*.py; first use
from many threads: tests/test_concurrency.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semtoken_rag import Compressor, SemToken, SemTokenConfig
from semtoken_rag.config import FLAT
from semtoken_rag.core.forcekeep import PRESET_PATTERNS, compile_rules, match_spans
from semtoken_rag.errors import (
    ConfigError,
    ForceKeepTimeoutError,
    InvalidInputError,
    SemTokenError,
)
from tests.fakes import FakeEncoder, WhitespaceCounter

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def fake(**config: object) -> Compressor:
    return Compressor(SemTokenConfig(**config), encoder=FakeEncoder(), counter=WhitespaceCounter())


def verbatim(original: str, chunk, sep: str = " … ") -> bool:
    return chunk.text == sep.join(original[s:e] for s, e in chunk.offsets)


@pytest.fixture(scope="module")
def minilm_counter():
    """The real default counter (MiniLM's WordPiece) with the fake encoder: the tokenizers
    library sees the text, as in production, without a model forward."""
    from semtoken_rag.tokens import load_counter

    return load_counter(SemTokenConfig().encoder_model)


# -- 1. text the tokenizer cannot take ----------------------------------------------------
SURROGATES = ["\ud800", "a\udfffb", "x\udc80\udcff y", "\ud83d\ude00 pair as two", "\udbff" * 40]


@pytest.mark.parametrize("bad", SURROGATES)
def test_lone_surrogates_are_computed_on_and_rendered_verbatim(minilm_counter, bad: str) -> None:
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=minilm_counter)
    chunk = f"Before it. {bad} sits here. After it, more words follow."
    res = comp.compress([chunk, "Plain chunk."], query=f"where {bad}?", ratio=0.7)
    assert verbatim(chunk, res.chunks[0])
    assert res.chunks[0].original_tokens > 0
    assert comp.count_tokens(bad) >= 1


@pytest.mark.slow
def test_lone_surrogates_with_the_real_encoder(real_compressor: Compressor) -> None:
    for bad in SURROGATES:
        chunk = f"The key {bad} opened the door. Nothing else happened."
        res = real_compressor.compress(chunk, f"what opened {bad}", ratio=0.5)
        assert verbatim(chunk, res.chunks[0])


TEXT = st.text(alphabet=st.characters(exclude_categories=()), min_size=0, max_size=300)


@SETTINGS
@given(chunks=st.lists(TEXT, max_size=4), query=st.one_of(st.none(), TEXT))
def test_any_unicode_text_is_safe(minilm_counter, chunks: list[str], query: str | None) -> None:
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=minilm_counter)
    res = comp.compress(chunks, query, ratio=0.5)
    for original, chunk in zip(chunks, res.chunks, strict=True):
        assert verbatim(original, chunk)
    assert res.kept_tokens <= res.budget_tokens


# -- 2. force-keep patterns ---------------------------------------------------------------
def test_inline_flags_group_names_and_backreferences_are_per_pattern() -> None:
    comp = fake(force_keep=(r"(?i)acme-\d+", r"(?P<x>ab)c", r"(?P<x>zz)(?P=x)", r"(q)\1"))
    text = "Order ACME-42 shipped. Nothing else here at all. Tags abc and zzzz and qq end."
    res = comp.compress(text, "nothing", budget=1)
    kept = res.chunks[0].text
    for needle in ("ACME-42", "abc", "zzzz", "qq"):
        assert needle in kept


@pytest.mark.parametrize("pattern", ["(", "[a-", "(?P<1>x)", "a{2,1}", "(?<=a+)b(", "\\", "(?i"])
def test_bad_pattern_is_a_config_error_naming_it(pattern: str) -> None:
    with pytest.raises(ConfigError) as err:
        SemTokenConfig(force_keep=("fine", pattern))
    assert repr(pattern) in str(err.value) and "#1" in str(err.value)


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(x+x+)+y", r"(\w+\s?)+$"])
def test_classic_backtracking_patterns_finish(pattern: str) -> None:
    """`re` hangs on these; the `regex` engine the rules run on does not."""
    res = fake(force_keep=(pattern,)).compress("a" * 40 + " " + "x" * 40 + "!", "q", ratio=0.5)
    assert res.kept_tokens <= res.budget_tokens + res.overshoot_tokens


@pytest.mark.parametrize("pattern", [r"(a|aa)+$", r"(?:a|aa)+!$"])
def test_catastrophic_pattern_times_out_with_a_typed_error(pattern: str) -> None:
    comp = fake(force_keep=(pattern,), force_keep_timeout=0.2)
    text = "a" * 60 + "?"
    with pytest.raises(ForceKeepTimeoutError) as err:
        comp.compress(text, "q", ratio=0.5)
    assert repr(pattern) in str(err.value)


@pytest.mark.parametrize("name", sorted(PRESET_PATTERNS))
@pytest.mark.parametrize(
    "text",
    ["a-" * 30000, "a." * 30000, "a1-" * 20000, "1" * 60000, "a@" * 30000, "Ab1-" * 15000],
)
def test_presets_finish_on_adversarial_runs(name: str, text: str) -> None:
    # A 1 s limit: the old quadratic `ids`/`emails` presets took ~20 s on these inputs.
    match_spans(text, compile_rules((), (name,)), timeout=1.0)


REGEX_ALPHABET = "ab()[]*+?|^$\\{},.-<>=!:P?i1"


@SETTINGS
@given(patterns=st.lists(st.text(alphabet=REGEX_ALPHABET, min_size=1, max_size=12), max_size=3))
def test_any_pattern_list_is_accepted_or_refused_by_name(patterns: list[str]) -> None:
    try:
        comp = fake(force_keep=tuple(patterns), force_keep_timeout=0.5)
    except ConfigError as exc:
        assert "force_keep" in str(exc)
        return
    try:
        res = comp.compress("ab aab abab. Some (words) [here]. a{1} b", "ab", ratio=0.5)
    except ForceKeepTimeoutError as exc:
        assert "force_keep pattern" in str(exc)
        return
    assert res.kept_tokens <= res.budget_tokens + res.overshoot_tokens


# -- configuration values -----------------------------------------------------------------
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.just(object()),
    st.just(np.float32(0.5)),
    st.just(np.int64(3)),
)


@SETTINGS
@given(name=st.sampled_from(sorted(FLAT)), value=VALUES)
def test_any_config_value_is_accepted_or_named(name: str, value: object) -> None:
    try:
        cfg = SemTokenConfig(**{name: value})
    except ConfigError as exc:
        assert name in str(exc)
        return
    got = getattr(cfg, name)
    assert not isinstance(got, (np.generic,)), "numpy scalars are made plain"


def test_numpy_scalars_in_range_are_accepted() -> None:
    cfg = SemTokenConfig(
        compression_ratio=np.float32(0.5),
        batch_size=np.int64(8),
        similarity_threshold=np.float64(0.6),
    )
    assert cfg.compression_ratio == 0.5 and type(cfg.compression_ratio) is float
    assert cfg.batch_size == 8 and type(cfg.batch_size) is int
    res = fake().compress("One two. Three four.", ratio=np.float32(0.5), budget=None)
    assert res.budget_tokens == 2


def test_non_numeric_threshold_names_the_field() -> None:
    with pytest.raises(ConfigError, match="similarity_threshold must be a number in"):
        SemTokenConfig(similarity_threshold="high")


# -- 6. budgets and counts ----------------------------------------------------------------
@pytest.mark.parametrize("budget", [10**19, 10**30, 2**63 - 1])
@pytest.mark.parametrize("scope", ["joint", "per_chunk"])
def test_huge_budgets_keep_everything(budget: int, scope: str) -> None:
    chunks = ["One two three. Four five.", "Six seven. Eight nine ten."]
    res = fake(budget_scope=scope).compress(chunks, "q", budget=budget)
    assert [c.text for c in res.chunks] == chunks
    assert all(c.kept_tokens == c.original_tokens > 0 for c in res.chunks)


def test_unknown_token_runs_are_not_counted_as_one_token(minilm_counter) -> None:
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=minilm_counter)
    run = "a" * 20_000
    assert comp.count_tokens(run) > 1000  # WordPiece alone says 1 ([UNK])
    res = comp.compress([run], "q", budget=50)
    assert res.kept_tokens <= 50
    assert len(res.chunks[0].text) <= 50 * 8  # kept characters follow the budget
    for text in ("🙂" * 30, "\ufffd" * 10, "\x00\x07" * 10):
        assert comp.count_tokens(text) >= 1


# -- 7. seed API --------------------------------------------------------------------------
def test_seed_api_edge_cases() -> None:
    seed = SemToken(SemTokenConfig())
    seed.compressor = fake()
    with pytest.raises(
        InvalidInputError, match="batch_process\\(\\) takes a list of texts, got str"
    ):
        seed.batch_process("a string")
    with pytest.raises(InvalidInputError, match="got NoneType"):
        seed.batch_process(None)
    with pytest.raises(InvalidInputError, match="text 1 is int"):
        seed.batch_process(["ok", 3])
    with pytest.raises(InvalidInputError, match="tokenize\\(\\) takes one text"):
        seed.tokenize(["a", "b"])
    with pytest.raises(ConfigError, match="tokenizer must be"):
        SemToken(tokenizer=42)
    with pytest.raises(ConfigError, match="config must be a SemTokenConfig"):
        SemToken(config={"compression_ratio": 0.5})
    out = seed.batch_process(["One two. Three four.", "Five six."])
    assert len(out) == 2 and all(r["compression_stats"]["original_count"] > 0 for r in out)


# -- 8. the evaluation loader -------------------------------------------------------------
NESTED = "[" * 100_000 + "]" * 100_000
BAD_FILES = {
    "null": ('{"id": "1", "context": "c", "question": "q", "answers": ["a"]}\nnull\n', ":2: "),
    "utf8": (b'{"id": "1", "context": "\xff\xfe", "question": "q", "answers": []}\n', ":1: "),
    "empty": ("", "no examples"),
    "answers": ('{"id": "1", "context": "c", "question": "q", "answers": 9}\n', ":1: 'answers'"),
    "nested": ('{"id": "1", "context": "c", "question": ' + NESTED + "}\n", ":1: "),
    "list": ("[1, 2]\n", ":1: expected a JSON object"),
    "context": ('{"id": "1", "context": {"a": 1}, "question": "q", "answers": []}\n', "'context'"),
    "schema": ('{"foo": 1}\n', ":1: unknown example schema"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_eval_loader_errors_name_the_line(tmp_path: Path, case: str) -> None:
    from semtoken_lab.eval.data import load_examples

    content, fragment = BAD_FILES[case]
    path = tmp_path / f"{case}.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InvalidInputError) as err:
        load_examples([path])
    assert str(path) in str(err.value) and fragment in str(err.value)
    assert "\n" not in str(err.value)


# -- 9. the CLI ---------------------------------------------------------------------------
def cli(*args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "semtoken_rag.cli.main", *args],
        input=stdin,
        capture_output=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )


def one_line_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = proc.stderr.decode("utf-8", "replace").strip()
    assert proc.returncode != 0, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Loading weights" not in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("compress", "tests"), "is a directory"),
        (("compress", "no/such/file.txt"), "no such file"),
        (("compress", "--ratio", "1.5", "README.md"), "ratio must be"),
        (("compress", "--ratio", "abc", "README.md"), "or 'auto', got abc"),
        (("compress", "--force-keep", "(", "README.md"), "invalid force_keep regex"),
        (("compress", "--budget", "-3", "README.md"), "budget must be"),
        (("store", "info", "no/such/store"), "no fingerprint store"),
        (("nope",), "invalid choice"),
        (("eval", "--data", "no/such.jsonl", "--out", "/tmp/x"), "no such data file"),
        (("ask", "tests", "-q", "Why?"), "is a directory"),
        (("ask", "no/such/file.txt", "-q", "Why?"), "no such file"),
    ],
)
def test_cli_failures_are_one_line(args: tuple[str, ...], fragment: str) -> None:
    assert fragment in one_line_error(cli(*args))


@pytest.mark.slow
def test_cli_survives_binary_stdin_and_undecodable_arguments() -> None:
    garbage = bytes(range(256)) * 4 + b"\nA real sentence follows here. And another one.\n"
    proc = cli("compress", "--ratio", "0.5", stdin=garbage)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    proc = cli("compress", "--query", b"caf\xe9 \xff?", "--json", stdin=b"Coffee is hot. Tea.")
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    payload = json.loads(proc.stdout.decode("utf-8", "replace"))
    assert payload["chunks"][0]["original_tokens"] > 0
    assert not math.isnan(payload["ratio"])


def test_typed_errors_are_semtoken_errors() -> None:
    for cls in (ConfigError, InvalidInputError, ForceKeepTimeoutError):
        assert issubclass(cls, SemTokenError)
