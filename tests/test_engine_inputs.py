"""Bad and extreme inputs: every failure is a typed error with a message, never a numpy or
torch crash."""

from __future__ import annotations

import functools
import random
import string

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.config import PRESETS
from semtoken_rag.errors import ConfigError, InvalidInputError, SemTokenError
from tests import fakes
from tests.fakes import FakeEncoder, WhitespaceCounter

MIXED = (
    "Le café coûte 3,50 €. Das Straßenbahn-Netz ist groß! 東京は大きい。서울도 크다. "
    "Emoji 🙂👋🏽 and flags 🇫🇷; zero\u200bwidth, RTL עברית ومرحبا. "
    "Control\x00chars\x07 here\x1b[0m. Tab\tand\r\nCRLF lines.\n\nNew paragraph \u00a0nbsp.\u2028"
    "Combining e\u0301 and math 𝔘𝔫𝔦. Surrogate-free end."
)


@pytest.fixture()
def comp() -> Compressor:
    return Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())


def assert_verbatim(original: str, res_chunk, separator: str = " … ") -> None:
    assert res_chunk.text == separator.join(original[s:e] for s, e in res_chunk.offsets)
    prev = 0
    for s, e in res_chunk.offsets:
        assert prev <= s < e <= len(original)
        prev = e


# -- chunks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("chunks", "fragment"),
    [
        (None, "got None"),
        (5, "got int"),
        (3.5, "got float"),
        (b"bytes text", "not bytes"),
        (bytearray(b"x"), "not bytes"),
        (["fine", 3], "chunk 1 is int"),
        (["fine", None], "chunk 1 is NoneType"),
        ([b"x"], "chunk 0 is bytes"),
    ],
)
def test_bad_chunks_are_typed_errors(comp: Compressor, chunks: object, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        comp.compress(chunks)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        comp.compress_many([(chunks, None)])  # type: ignore[list-item]
    from semtoken_rag.store import FingerprintStore

    with FingerprintStore() as store, pytest.raises(InvalidInputError):
        ingesting = Compressor(comp.config, encoder=comp.encoder, store=store, counter=comp.counter)
        ingesting.ingest(chunks)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \r\n", "\u00a0\u2003"])
def test_empty_and_blank_text(comp: Compressor, text: str) -> None:
    res = comp.compress(text, "question?")
    assert len(res.chunks) == 1
    c = res.chunks[0]
    assert (c.text, c.offsets, c.original_tokens, c.kept_tokens) == ("", (), 0, 0)
    assert res.ratio == 1.0 and res.overshoot_tokens == 0


def test_no_chunks(comp: Compressor) -> None:
    res = comp.compress([], "q")
    assert res.chunks == () and res.kept_tokens == 0 and res.joined() == ""


def test_mixed_empty_and_real_chunks(comp: Compressor) -> None:
    chunks = ["", "Alpha beta. Gamma delta.", "  ", MIXED]
    res = comp.compress(chunks, "alpha", ratio=0.5)
    assert [c.text for c in res.chunks][::2] == ["", ""]
    for original, c in zip(chunks, res.chunks, strict=False):
        assert_verbatim(original, c)


# -- query ---------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_blank_query_is_no_query(comp: Compressor, query: str) -> None:
    text = "Alpha beta gamma. Delta epsilon. Zeta eta theta. Iota kappa."
    with_blank = comp.compress(text, query, ratio=0.5)
    without = comp.compress(text, None, ratio=0.5)
    assert with_blank.query is None
    assert with_blank.chunks == without.chunks


@pytest.mark.parametrize("query", [5, b"who?", ["who?"]])
def test_bad_query(comp: Compressor, query: object) -> None:
    with pytest.raises(InvalidInputError, match="query must be a string or None"):
        comp.compress("Some text here.", query)  # type: ignore[arg-type]


# -- ratio and budget ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        {"ratio": 0},
        {"ratio": 0.0},
        {"ratio": -0.5},
        {"ratio": 1.0001},
        {"ratio": 2},
        {"ratio": float("nan")},
        {"ratio": float("inf")},
        {"ratio": "0.5"},
        {"ratio": True},
        {"budget": 0},
        {"budget": -1},
        {"budget": 2.5},
        {"budget": "10"},
        {"budget": False},
    ],
)
def test_bad_ratio_or_budget(comp: Compressor, kwargs: dict) -> None:
    with pytest.raises(InvalidInputError, match=r"ratio must be|budget must be"):
        comp.compress("Some text. More text.", "q", **kwargs)


def test_budget_larger_than_text_keeps_all(comp: Compressor) -> None:
    text = "One two. Three four."
    res = comp.compress(text, budget=10_000)
    assert res.chunks[0].text == text and res.budget_tokens == 4


def test_tiny_budget_keeps_within(comp: Compressor) -> None:
    text = "One two three four five six seven eight nine ten. Eleven twelve."
    res = comp.compress(text, "eleven", budget=1)
    assert res.kept_tokens <= 1


# -- extreme texts -------------------------------------------------------------------------
def test_mixed_scripts_emoji_control_chars_fake(comp: Compressor) -> None:
    for ratio in (0.2, 0.5, 1.0):
        res = comp.compress([MIXED, MIXED[::-1]], "café 東京", ratio=ratio)
        assert_verbatim(MIXED, res.chunks[0])
        assert_verbatim(MIXED[::-1], res.chunks[1])
        assert res.kept_tokens <= res.budget_tokens


def test_lone_surrogate_does_not_crash(comp: Compressor) -> None:
    text = "Broken \ud800 surrogate. Still fine here."
    res = comp.compress(text, ratio=0.5)
    assert_verbatim(text, res.chunks[0])


def test_one_million_characters_fake_encoder(
    comp: Compressor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake encoder hashes every word; memoise it so the test measures the engine.
    monkeypatch.setattr(fakes, "_word_vec", functools.lru_cache(maxsize=None)(fakes._word_vec))
    rng = random.Random(7)
    vocab = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(5000)]
    parts, size = [], 0
    while size < 1_000_000:
        words = rng.choices(vocab, k=rng.randint(4, 30))
        sent = " ".join(words).capitalize() + rng.choice([". ", "! ", "? ", ".\n", ".\n\n"])
        parts.append(sent)
        size += len(sent)
    doc = "".join(parts)[:1_000_000]
    res = comp.compress(doc, "what happened", ratio=0.3)
    c = res.chunks[0]
    assert c.original_tokens > 100_000
    assert 0.25 <= res.ratio <= 0.3
    assert c.offsets[0][0] >= 0 and c.offsets[-1][1] <= len(doc)
    assert all(a[1] < b[0] for a, b in zip(c.offsets, c.offsets[1:], strict=False))
    assert doc[c.offsets[0][0] : c.offsets[0][1]] == c.text[: c.offsets[0][1] - c.offsets[0][0]]


def test_no_whitespace_text(comp: Compressor) -> None:
    text = "x" * 5000 + "東京" * 100
    res = comp.compress(text, ratio=0.5)
    assert_verbatim(text, res.chunks[0])
    assert res.kept_tokens <= res.budget_tokens


# -- real encoder --------------------------------------------------------------------------
@pytest.mark.slow
def test_real_encoder_bad_inputs(real_compressor: Compressor) -> None:
    for bad in (None, 7, b"x", ["ok", 1]):
        with pytest.raises(InvalidInputError):
            real_compressor.compress(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        real_compressor.compress("text", ratio=0)
    for text in ("", "   \n "):
        res = real_compressor.compress(text, "")
        assert res.chunks[0].text == "" and res.kept_tokens == 0


@pytest.mark.slow
def test_real_encoder_mixed_scripts(real_compressor: Compressor) -> None:
    res = real_compressor.compress([MIXED, "\x00\x01\x02 \x1f", "🙂" * 50], "Wie groß?", ratio=0.5)
    assert_verbatim(MIXED, res.chunks[0])
    assert_verbatim("\x00\x01\x02 \x1f", res.chunks[1])
    assert_verbatim("🙂" * 50, res.chunks[2])
    assert res.kept_tokens <= res.budget_tokens + res.overshoot_tokens


@pytest.mark.slow
def test_real_encoder_50k_characters(real_compressor: Compressor, narrativeqa: list[dict]) -> None:
    contexts = list(dict.fromkeys(r["context"] for r in narrativeqa))
    doc = ""
    i = 0
    while len(doc) < 50_000:
        doc += contexts[i % len(contexts)] + f"\n\nSection {i}.\n"
        i += 1
    doc = doc[:50_000]
    res = real_compressor.compress(doc, "Who is Krag?", ratio=0.25)
    assert_verbatim(doc, res.chunks[0])
    assert res.kept_tokens <= res.budget_tokens


# -- config --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"compression_ratio": 0}, "compression_ratio"),
        ({"compression_ratio": 1.5}, "compression_ratio"),
        ({"compression_ratio": "0.5"}, "compression_ratio"),
        ({"budget_tokens": 0}, "budget_tokens"),
        ({"budget_tokens": 1.5}, "budget_tokens"),
        ({"device": "tpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"unit": "paragraph"}, "unit must be one of"),
        ({"budget_scope": "global"}, "budget_scope"),
        ({"no_query_mode": "random"}, "no_query_mode"),
        ({"encoder_dtype": "int8"}, "encoder_dtype"),
        ({"similarity_threshold": 1.5}, "similarity_threshold"),
        ({"dedup_threshold": -2.0}, "dedup_threshold"),
        ({"entropy_threshold": -0.1}, "entropy_threshold"),
        ({"max_cluster_size": 0}, "max_cluster_size"),
        ({"min_cluster_size": 5, "max_cluster_size": 3}, "min_cluster_size"),
        ({"window_tokens": 8}, "window_tokens"),
        ({"window_tokens": 32, "window_overlap": 20}, "window_overlap=20"),
        ({"force_keep": ("(unclosed",)}, "invalid force_keep regex"),
        ({"force_keep": ("",)}, "non-empty"),
        ({"force_keep_presets": ("phone",)}, "force_keep_presets must be .*'numbers'"),
        ({"force_keep": 5}, "force_keep must be a sequence of non-empty strings"),
        ({"encoder_model": "  "}, "encoder_model"),
        ({"min_fill_tokens": 0}, "min_fill_tokens"),
        ({"relevance": "bm25"}, "relevance must be one of"),
        ({"query_top_words": 0}, "query_top_words"),
    ],
)
def test_config_validation(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        SemTokenConfig(**kwargs)
    assert issubclass(ConfigError, SemTokenError) and issubclass(ConfigError, ValueError)


def test_config_replace_validates_and_lists_freeze() -> None:
    cfg = SemTokenConfig(force_keep=[r"\bKrag\b"], force_keep_presets="numbers")  # type: ignore[arg-type]
    assert cfg.force_keep == (r"\bKrag\b",) and cfg.force_keep_presets == ("numbers",)
    hash(cfg)
    with pytest.raises(ConfigError):
        cfg.replace(compression_ratio=0)


def test_presets() -> None:
    assert SemTokenConfig.preset("default") == SemTokenConfig()
    cons, aggr = SemTokenConfig.conservative(), SemTokenConfig.aggressive()
    assert cons.compression_ratio == 0.7 and aggr.compression_ratio == 0.3
    assert (cons.similarity_threshold, cons.entropy_threshold) == (0.6, 0.4)
    assert (aggr.similarity_threshold, aggr.entropy_threshold) == (0.8, 0.6)
    assert SemTokenConfig.aggressive(compression_ratio=0.2).compression_ratio == 0.2
    assert set(PRESETS) >= {"default", "conservative", "aggressive"}
    with pytest.raises(ConfigError, match="unknown preset"):
        SemTokenConfig.preset("extreme")
    with pytest.raises(ConfigError):
        SemTokenConfig.aggressive(compression_ratio=3)


def test_config_ratio_used_by_engine() -> None:
    comp = Compressor(
        SemTokenConfig(compression_ratio=0.3), encoder=FakeEncoder(), counter=WhitespaceCounter()
    )
    text = " ".join(f"Word{i} w{i} x{i} y{i}." for i in range(50))
    res = comp.compress(text)
    assert res.budget_tokens == int(0.3 * res.original_tokens)
    comp = Compressor(
        SemTokenConfig(budget_tokens=17), encoder=FakeEncoder(), counter=WhitespaceCounter()
    )
    assert comp.compress(text).budget_tokens == 17


def test_mapping_is_not_taken_as_chunks() -> None:
    """A dict would otherwise be iterated as its keys: a silent wrong result."""
    from semtoken_rag import Compressor, InvalidInputError
    from tests.fakes import FakeEncoder, WhitespaceCounter

    comp = Compressor(encoder=FakeEncoder(), counter=WhitespaceCounter())
    with pytest.raises(InvalidInputError, match="mapping"):
        comp.compress({"a": "text"})  # type: ignore[arg-type]


# -- query embeddings ---------------------------------------------------------------------
class _CountingEncoder(FakeEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.query_passes = 0

    def encode_query_words(self, texts):  # type: ignore[no-untyped-def]
        self.query_passes += len(texts)
        return super().encode_query_words(texts)


def test_query_vectors_memoised_and_bounded() -> None:
    from semtoken_rag.queries import QueryVectors

    enc = _CountingEncoder()
    first = "who wrote the charter?"
    one = len(first) + 49 + 2 * enc.dim * 4  # str object + two word fingerprints
    qv = QueryVectors("late_interaction", max_bytes=2 * one + 20)
    a = qv.get(enc, [first, first])
    assert enc.query_passes == 1 and a[first].shape == (2, enc.dim)
    qv.get(enc, [first])
    assert enc.query_passes == 1  # remembered
    qv.get(enc, ["who signed the charter?"])  # two entries fit
    qv.get(enc, [first])
    assert enc.query_passes == 2
    # A long query's embedding takes the room of many short ones: it evicts them.
    qv.get(enc, [" ".join(f"clause{i}" for i in range(3))])
    qv.get(enc, [first])
    assert enc.query_passes == 4
    assert qv.get(enc, ["?!"])["?!"].shape == (1, enc.dim)  # no content word: all words
    pooled = QueryVectors("pooled").get(enc, ["who wrote it"])["who wrote it"]
    assert pooled.shape == (enc.dim,)


def test_text_memos_are_bounded_in_bytes() -> None:
    """The prepared-chunk and token-cost memos were bounded by entry count: 2,048 prepared
    18k-word chunks held 1.4 GB.  A text memo is bounded by its texts' and arrays' bytes."""
    from semtoken_rag.cache import LRUMemo, text_and_arrays_bytes

    entry = text_and_arrays_bytes("x" * 1000, np.zeros(100, np.int64), None)
    assert 1000 + 800 < entry < 1000 + 800 + 100  # the str header is a few dozen bytes
    memo: LRUMemo[str, np.ndarray] = LRUMemo(3 * entry, text_and_arrays_bytes)
    texts = [c * 1000 for c in "abcd"]
    for t in texts:
        memo.put(t, np.zeros(100, np.int64))
    assert memo.get(texts[0]) is None and all(memo.get(t) is not None for t in texts[1:])
    memo.put("y" * 10_000, np.zeros(1, np.int64))  # larger than the memo: not kept
    assert memo.get("y" * 10_000) is None and memo.get(texts[3]) is not None
    counted: LRUMemo[str, int] = LRUMemo(2)  # without ``size``: entries
    for t in texts:
        counted.put(t, 1)
    assert [counted.get(t) for t in texts] == [None, None, 1, 1]


def test_preparer_memo_holds_at_most_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from semtoken_rag import preparation

    monkeypatch.setattr(preparation, "PREPARE_CACHE_BYTES", 200_000)
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    chunks = [" ".join(f"w{i}x{j}." for j in range(2000)) for i in range(20)]  # ~100 KB each
    prepared = comp.prepare(chunks)
    assert len(prepared.chunks) == 20
    again = comp.prepare(chunks[-1:])  # the last one is still memoised, same arrays
    assert again.chunks[0].word_costs is prepared.chunks[-1].word_costs
    first = comp.prepare(chunks[:1])  # long evicted: prepared anew
    assert first.chunks[0].word_costs is not prepared.chunks[0].word_costs


def test_explain_returns_what_compress_returns_with_its_costs() -> None:
    """``explain`` is ``compress`` plus the scores: same kept text, and the encoder pass and
    token counting it paid for are in its result (they were dropped once)."""
    text = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Kappa lambda mu."
    enc = FakeEncoder()
    res, why = Compressor(SemTokenConfig(), encoder=enc, counter=WhitespaceCounter()).explain(
        text, "delta", ratio=0.5
    )
    ref = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    want = ref.compress(text, "delta", ratio=0.5)
    assert res.chunks == want.chunks and res.budget_tokens == want.budget_tokens
    assert res.encoder_calls == want.encoder_calls == 1
    assert why.unit_kept.sum() == want.chunks[0].n_units_kept
    with pytest.raises(InvalidInputError):
        Compressor(SemTokenConfig(), encoder=enc, counter=WhitespaceCounter()).explain([3], None)


def test_compress_with_only_punctuation_query_is_safe() -> None:
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    text = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."
    res = comp.compress(text, "?", ratio=0.5)
    assert 0 < res.kept_tokens <= res.budget_tokens


def test_explain_maps_every_unit_to_its_chunk_text() -> None:
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    chunks = [
        "Alpha beta gamma. Delta epsilon zeta. Eta theta iota.",
        "Kappa lambda mu. Nu xi omicron pi.",
    ]
    result, why = comp.explain(chunks, "delta epsilon", ratio=0.5)
    n = len(why.unit_chunk)
    assert n == 5 and why.unit_chunk.tolist() == [0, 0, 0, 1, 1]
    for arr in (why.unit_span, why.unit_entropy, why.unit_density, why.unit_score):
        assert arr.shape == (n,)
    pieces = [chunks[c][a:b] for c, (a, b) in zip(why.unit_chunk, why.unit_char_spans)]
    assert pieces[:3] == ["Alpha beta gamma.", "Delta epsilon zeta.", "Eta theta iota."]
    assert pieces[3:] == ["Kappa lambda mu.", "Nu xi omicron pi."]
    kept = [p for p, k in zip(pieces, why.unit_kept) if k]
    assert kept and all(p.split()[0] in result.joined() for p in kept)
    assert "Delta epsilon zeta." in result.joined()  # the query's sentence ranks first


def test_ratio_one_keeps_all_but_near_duplicates_as_documented() -> None:
    """``ratio=1.0`` (or any budget above the text) keeps every unit except repeats of a kept
    one (the cross-chunk skip); with both skips off it keeps the text as it is (README, "Bad
    input, documented")."""
    text = "The cat sat on the mat. The cat sat on the mat. A dog barked loudly."
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    assert comp.compress(text, "cat", ratio=1.0).chunks[0].text.count("The cat sat") == 1
    keep = Compressor(
        SemTokenConfig(dedup_threshold=None, lexical_dedup_threshold=None),
        encoder=FakeEncoder(),
        counter=WhitespaceCounter(),
    )
    assert keep.compress(text, "cat", ratio=1.0).chunks[0].text == text


# -- fixed bugs ------------------------------------------------------------------------------
def test_cache_bytes_zero_keeps_none_even_of_an_empty_chunk() -> None:
    """``cache_bytes=0`` keeps no fingerprint; an empty chunk's (0 bytes, counted as 1 by the
    cache) crashed cachetools with ``ValueError('value too large')``."""
    comp = Compressor(
        SemTokenConfig(cache_bytes=0), encoder=FakeEncoder(), counter=WhitespaceCounter()
    )
    res = comp.compress(["", "alpha beta."], "q?")
    assert res.texts[0] == "" and len(res.texts) == 2


@pytest.mark.parametrize("ratio", [10**400, -(10**400), 10**5000], ids=["e400", "-e400", "e5000"])
def test_a_ratio_beyond_float_range_is_a_typed_error(comp: Compressor, ratio: int) -> None:
    """``float(10**400)`` raised an untyped ``OverflowError``; it is a ratio out of (0, 1]."""
    with pytest.raises(InvalidInputError, match=r"ratio must be a number in \(0, 1\] or 'auto'"):
        comp.compress(["alpha beta. gamma delta."], "q?", ratio=ratio)


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**5000], ids=["e400", "-e400", "e5000"])
def test_check_number_refuses_an_int_beyond_float_range(value: int) -> None:
    from semtoken_rag.inputs import check_number

    with pytest.raises(InvalidInputError, match="touch_interval must be a finite number >= 0"):
        check_number(value, "touch_interval", 0.0)


@pytest.mark.parametrize("timeout", [9.3e12, 1e15, 1e300])
def test_a_huge_force_keep_timeout_means_unbounded(timeout: float) -> None:
    """The ``regex`` library treats a timeout above ~9.2e12 s as already expired: a valid huge
    ``force_keep_timeout`` failed every chunk with ``ForceKeepTimeoutError``."""
    comp = Compressor(
        SemTokenConfig(force_keep=["alpha"], force_keep_timeout=timeout),
        encoder=FakeEncoder(),
        counter=WhitespaceCounter(),
    )
    assert comp.compress(["alpha beta. gamma delta."], "q?").texts == ["alpha beta."]


_THREE = "One two three four five six. Alpha beta gamma delta epsilon zeta. Red green blue teal."


@pytest.mark.parametrize(
    ("scores", "kept"),
    [
        ([1e-7, 2e-7, 3e-7], "Red green blue teal."),  # tiny
        ([0.999991, 0.999992, 0.999994], "Red green blue teal."),  # probabilities
        ([3.0, 1e39, 2e39], "Red green blue teal."),  # beyond float32
        ([1e308, -1e308, 5e307], "One two three four five six."),  # near float64's limit
        ([0.3, 0.3 + 1e-9, 0.1], "One two three four five six."),  # float noise: a tie
        ([0.5, 0.5, 0.5], "One two three four five six."),  # a tie keeps the earlier unit
    ],
)
def test_external_scores_rank_the_units_at_any_scale(scores: list[float], kept: str) -> None:
    """``plan(..., scores=...)`` ranks by the caller's scores whatever their scale: the
    5-decimal tie rule (meant for float noise in the engine's unit-scale scores) tied
    probabilities, and a float32 cast turned 1e39 into infinity (with a RuntimeWarning)."""
    import warnings

    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    prepared = comp.prepare([_THREE], fingerprints=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = comp.plan(prepared, scores=scores, budget=6)
    assert comp.render(plan).texts == [kept]
    assert np.isfinite(plan.explain().unit_score).all()
