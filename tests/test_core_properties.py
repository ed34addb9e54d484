"""Property tests of the engine (fake encoder, one token per word) on generated texts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.budgets import ratio_tokens
from semtoken_rag.core.forcekeep import compile_rules, match_spans
from semtoken_rag.core.segment import find_words
from tests.fakes import FakeEncoder, WhitespaceCounter

WORDS = st.sampled_from(
    [
        *(
            [
                "the",
                "a",
                "cat",
                "dog",
                "sat",
                "on",
                "mat",
                "Krag",
                "42",
                "3.14",
                "2024-01-02",
                "Mr.",
                "e.g.",
                "über",
                "naïve",
            ]
        ),
        *("你好", "東京", "🙂", "👋🏽", "x\x07y", "tab\tbed", "(paren)", '"quoted"', "it's"),
        "well-known",
    ]
)
END = st.sampled_from([".", "!", "?", ",", ";", "", "…", "。", '."', ":"])
GAP = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  ", "\t", " \u00a0"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    sentences = draw(
        st.lists(
            st.tuples(st.lists(WORDS, min_size=1, max_size=14), END, GAP),
            min_size=0,
            max_size=25,
        )
    )
    lead = draw(st.sampled_from(["", " ", "\n"]))
    return lead + "".join(" ".join(ws) + end + gap for ws, end, gap in sentences)


CHUNKS = st.lists(texts(), min_size=1, max_size=4)
QUERY = st.one_of(st.none(), st.just(""), st.sampled_from(["Who is Krag?", "the cat", "🙂"]))
RATIO = st.floats(min_value=0.01, max_value=1.0)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(**cfg: object) -> Compressor:
    return Compressor(SemTokenConfig(**cfg), encoder=FakeEncoder(), counter=WhitespaceCounter())


COMP = make()
COMP_PER_CHUNK = make(budget_scope="per_chunk")
COMP_NO_SEP = make(separator="")


def check_subsequence(original: str, compressed: str, offsets: tuple, separator: str) -> None:
    prev_end = 0
    for s, e in offsets:
        assert prev_end <= s < e <= len(original)
        piece = original[s:e]
        # Pieces start and end on whole words.
        assert piece == piece.strip() and piece
        prev_end = e
    # Offsets round-trip: the output is exactly the pieces joined by the separator.
    assert compressed == separator.join(original[s:e] for s, e in offsets)
    # Two pieces never touch: something (a whole word) was removed between them.
    words = find_words(original)
    starts = set(words[:, 0].tolist())
    ends = set(words[:, 1].tolist())
    for (s1, e1), (s2, _) in itertools.pairwise(offsets):
        assert any(s1 <= w < s2 for w in starts) and e1 in ends and s2 in starts


@SETTINGS
@given(chunks=CHUNKS, query=QUERY, ratio=RATIO)
def test_output_is_verbatim_subsequence(chunks: list[str], query: str | None, ratio: float) -> None:
    for comp in (COMP, COMP_PER_CHUNK):
        res = comp.compress(chunks, query, ratio=ratio)
        assert len(res.chunks) == len(chunks)
        for original, cr in zip(chunks, res.chunks, strict=False):
            check_subsequence(original, cr.text, cr.offsets, comp.config.budget.separator)
            assert cr.original_tokens == len(find_words(original))


@SETTINGS
@given(chunks=CHUNKS, query=QUERY, ratio=RATIO)
def test_budget_respected_without_force_keep(
    chunks: list[str], query: str | None, ratio: float
) -> None:
    res = COMP.compress(chunks, query, ratio=ratio)
    # One token per word: kept tokens are kept words plus one per separator.
    assert res.kept_tokens <= res.budget_tokens == ratio_tokens(ratio, res.original_tokens)
    assert res.overshoot_tokens == 0
    kept_words = sum(
        len(find_words(c[s:e]))
        for c, cr in zip(chunks, res.chunks, strict=False)
        for s, e in cr.offsets
    )
    seps = sum(max(len(cr.offsets) - 1, 0) for cr in res.chunks)
    assert res.kept_tokens == kept_words + seps <= res.budget_tokens
    per = COMP_PER_CHUNK.compress(chunks, query, ratio=ratio)
    for cr in per.chunks:
        assert cr.kept_tokens <= ratio_tokens(ratio, cr.original_tokens)


@SETTINGS
@given(chunks=CHUNKS, query=QUERY, budget=st.integers(min_value=1, max_value=400))
def test_absolute_budget_respected(chunks: list[str], query: str | None, budget: int) -> None:
    for comp in (COMP, COMP_NO_SEP):
        res = comp.compress(chunks, query, budget=budget)
        assert res.kept_tokens <= min(budget, res.original_tokens)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=CHUNKS, query=QUERY, ratios=st.lists(RATIO, min_size=2, max_size=6))
def test_monotone_in_ratio(chunks: list[str], query: str | None, ratios: list[float]) -> None:
    for comp in (COMP, COMP_PER_CHUNK, COMP_NO_SEP):
        kept = [comp.compress(chunks, query, ratio=r).kept_tokens for r in sorted(ratios)]
        assert kept == sorted(kept), (sorted(ratios), kept)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=CHUNKS, query=QUERY)
def test_monotone_in_every_integer_budget(chunks: list[str], query: str | None) -> None:
    total = COMP.compress(chunks, query, ratio=1.0).original_tokens
    prev = -1
    for b in range(1, min(total, 120) + 1):
        kept = COMP.compress(chunks, query, budget=b).kept_tokens
        assert prev <= kept <= b
        prev = kept


@SETTINGS
@given(chunks=CHUNKS, query=QUERY, ratio=RATIO)
def test_deterministic(chunks: list[str], query: str | None, ratio: float) -> None:
    a = COMP.compress(chunks, query, ratio=ratio)
    b = make().compress(chunks, query, ratio=ratio)
    assert [c.text for c in a.chunks] == [c.text for c in b.chunks]
    assert [c.offsets for c in a.chunks] == [c.offsets for c in b.chunks]
    assert a.kept_tokens == b.kept_tokens and a.budget_tokens == b.budget_tokens


@SETTINGS
@given(chunks=CHUNKS, ratio=RATIO)
def test_force_keep_matches_survive(chunks: list[str], ratio: float) -> None:
    comp = make(force_keep=(r"\bKrag\b",), force_keep_presets=("numbers",))
    res = comp.compress(chunks, "the cat", ratio=ratio)
    rules = compile_rules(comp.config.budget.force_keep, comp.config.budget.force_keep_presets)
    for original, cr in zip(chunks, res.chunks, strict=False):
        check_subsequence(original, cr.text, cr.offsets, comp.config.budget.separator)
        for a, b in match_spans(original, rules).tolist():
            assert any(s <= a and b <= e for s, e in cr.offsets), original[a:b]
    assert res.kept_tokens <= res.budget_tokens + res.overshoot_tokens


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0])
def test_ratio_one_keeps_everything_and_empty_chunks(ratio: float) -> None:
    chunks = ["", "One two three. Four five.", "   ", "Six."]
    res = COMP.compress(chunks, "two", ratio=ratio)
    assert [c.original_tokens for c in res.chunks] == [0, 5, 0, 1]
    assert res.chunks[0].text == "" and res.chunks[2].text == ""
    if ratio == 1.0:
        assert res.chunks[1].text == chunks[1] and res.chunks[3].text == "Six."
