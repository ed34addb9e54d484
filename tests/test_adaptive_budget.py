"""``compression_ratio="auto"``: the budget chosen per call (``core/adaptive.py``).

The core rule on hand-made arrays (coverage, floor, ceiling, summary, forced units, the
separator), the engine with the fake encoder (bounds, determinism, bad input, the documented
safe results), then the real MiniLM on real questions and the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.adaptive import (
    AdaptiveRule,
    BudgetChoice,
    choose_budget,
    covering_prefix,
    scope_budgets,
)
from semtoken_rag.core.scoring import word_unit_matches
from semtoken_rag.errors import ConfigError, InvalidInputError
from tests.conftest import read_jsonl, real_variant
from tests.fakes import FakeEncoder, WhitespaceCounter

#: Three query words (rows) matched in four units (columns); unit 2 is the best match of words
#: 0 and 1, unit 0 of word 2.
MATCHES = np.array(
    [[0.2, 0.1, 0.9, 0.3], [0.1, 0.2, 0.8, 0.1], [0.7, 0.1, 0.2, 0.1]], dtype=np.float32
)
COSTS = np.array([10, 20, 30, 40], dtype=np.int64)
ALL = np.ones(4, dtype=bool)
NONE = np.zeros(4, dtype=bool)


def _rule(**kw: object) -> AdaptiveRule:
    return AdaptiveRule(**{"floor": 0, "ceiling": 1000, **kw})  # type: ignore[arg-type]


def test_covering_prefix_stops_at_the_first_unit_that_covers_every_word() -> None:
    order = np.array([2, 1, 0, 3])  # unit 2 covers words 0 and 1; unit 0 (third) word 2
    assert covering_prefix(MATCHES, order, 1.0, 0.0) == (3, 1.0)
    k, cov = covering_prefix(MATCHES, order, 0.6, 0.0)  # two of three words suffice
    assert (k, round(cov, 3)) == (1, 0.667)
    # A tolerance that accepts unit 2's 0.2 for word 2 (best 0.7) covers everything at once.
    assert covering_prefix(MATCHES, order, 1.0, 0.5) == (1, 1.0)


def test_budget_is_the_covering_prefix_cost_plus_forced_units_and_separators() -> None:
    scores = np.array([0.5, 0.1, 0.9, 0.0])  # ranks units 2, 0, 1, 3
    got = choose_budget(MATCHES, scores, COSTS, ALL, NONE, _rule(separator_cost=2))
    assert (got.tokens, got.reason, got.coverage) == (30 + 10 + 2 * 2, "coverage", 1.0)
    assert (got.needed, got.query_words) == (44, 3)
    forced = np.array([False, False, False, True])  # unit 3 is kept whatever the budget
    got = choose_budget(MATCHES, scores, COSTS, ALL, forced, _rule(separator_cost=2))
    assert got.tokens == 44 + 40


def test_floor_ceiling_and_summary() -> None:
    scores = np.array([0.5, 0.1, 0.9, 0.0])
    assert choose_budget(MATCHES, scores, COSTS, ALL, NONE, _rule(floor=60)).reason == "floor"
    assert choose_budget(MATCHES, scores, COSTS, ALL, NONE, _rule(floor=60)).tokens == 60
    capped = choose_budget(MATCHES, scores, COSTS, ALL, NONE, _rule(ceiling=35))
    assert (capped.tokens, capped.reason, capped.needed) == (35, "ceiling", 40)
    for none in (None, np.zeros((0, 4), np.float32)):  # a summary request / no question
        got = choose_budget(none, scores, COSTS, ALL, NONE, _rule(ceiling=77))
        assert (got.tokens, got.reason) == (77, "summary")


def test_units_the_selection_may_not_choose_are_skipped() -> None:
    scores = np.array([0.5, 0.1, 0.9, 0.0])
    candidates = np.array([True, True, False, True])  # unit 2 (a duplicate, say) is out
    got = choose_budget(MATCHES, scores, COSTS, candidates, NONE, _rule(tolerance=0.0))
    # Without unit 2, words 0 and 1 are best matched (among candidates) by units 3 and 1.
    assert got.reason == "coverage" and got.tokens == 10 + 20 + 40


def test_per_chunk_scope_shares_the_budget_by_length() -> None:
    rule = _rule(per_chunk=True)
    choice = choose_budget(None, np.zeros(4), COSTS, ALL, NONE, rule)
    out = scope_budgets(choice, rule, np.array([300, 100]))
    assert out.tolist() == [750, 250]
    joint = scope_budgets(choice, _rule(), np.array([300, 100]))
    assert joint.tolist() == [1000]


def test_word_unit_matches_take_the_best_word_of_each_unit() -> None:
    q = np.eye(3, dtype=np.float32)[:2]  # two query words
    words = np.eye(3, dtype=np.float32)[[0, 2, 1, 1]]  # units [0, 1] and [2, 3]
    got = word_unit_matches(q, words, np.array([0, 2]))
    assert got.tolist() == [[1.0, 0.0], [0.0, 1.0]]


# -- the engine, fake encoder ----------------------------------------------------------------

TEXT = (
    "The river Thames flows through London and under Tower Bridge. "
    "Paris is the capital of France and hosts the Louvre museum. "
    "Bananas are yellow fruits rich in potassium and grown in the tropics. "
    "The Eiffel Tower was completed in 1889 for the World Fair in Paris. "
    "Mount Everest is the highest mountain above sea level in the Himalaya. "
) * 4


def _fake(**cfg: object) -> Compressor:
    return Compressor(SemTokenConfig(**cfg), encoder=FakeEncoder(), counter=WhitespaceCounter())


@pytest.mark.parametrize(
    "query",
    ["When was the Eiffel Tower completed?", "the", "quantum chromodynamics lattice", None, ""],
)
def test_auto_budget_stays_within_its_bounds_and_never_empties(query: str | None) -> None:
    comp = _fake(min_ratio=0.1, max_ratio=0.5)
    res = comp.compress([TEXT], query, ratio="auto")
    total = res.original_tokens
    choice = res.budget_choice
    assert choice is not None and choice.tokens == res.budget_tokens
    assert int(0.1 * total) <= res.budget_tokens <= 0.5 * total
    assert res.kept_tokens > 0 and res.chunks[0].text  # the floor at least, never empty
    if not query:
        assert choice.reason == "summary" and res.budget_tokens == int(0.5 * total)
    else:
        assert choice.reason in ("coverage", "floor", "ceiling") and choice.query_words >= 1


def test_auto_is_deterministic_and_the_config_default_equals_the_call_argument() -> None:
    q = "Which museum is in the capital of France?"
    a = _fake().compress([TEXT, TEXT[:300]], q, ratio="auto")
    b = _fake().compress([TEXT, TEXT[:300]], q, ratio="auto")
    c = _fake(compression_ratio="auto").compress([TEXT, TEXT[:300]], q)
    assert a.budget_choice == b.budget_choice == c.budget_choice
    assert [x.offsets for x in a.chunks] == [x.offsets for x in c.chunks]
    # A per-call number overrides the config's "auto" (a fixed budget: no choice reported).
    assert _fake(compression_ratio="auto").compress([TEXT], q, ratio=0.3).budget_choice is None


@pytest.mark.parametrize("chunks", ["", [], ["", "  \n "]])
def test_auto_on_an_empty_context_chooses_its_floor(chunks: str | list[str]) -> None:
    """Nothing to keep: an empty result whose choice is the floor of an empty context (0
    tokens), from the call's ``ratio="auto"``, the config's, and ``compress_many``."""
    by_call = _fake().compress(chunks, "When?", ratio="auto")
    by_config = _fake(compression_ratio="auto").compress(chunks, "When?")
    (many,) = _fake().compress_many([(chunks, "When?")], ratio="auto")
    for res in (by_call, by_config, many):
        assert res.joined() == "" and res.budget_tokens == res.kept_tokens == 0
        assert res.budget_choice is not None and res.budget_choice.as_dict() == {
            "tokens": 0, "reason": "floor", "coverage": 0.0, "needed": 0, "query_words": 0
        }  # fmt: skip


def test_max_tokens_caps_and_a_bigger_floor_keeps_more() -> None:
    q = "When was the Eiffel Tower completed?"
    capped = _fake(max_tokens=7).compress([TEXT], q, ratio="auto")
    assert capped.budget_tokens == 7 and capped.budget_choice.reason in ("ceiling", "floor")
    low = _fake(min_ratio=0.05).compress([TEXT], q, ratio="auto")
    high = _fake(min_ratio=0.4).compress([TEXT], q, ratio="auto")
    assert high.budget_tokens >= low.budget_tokens and high.budget_tokens >= 0.4 * 200


def test_explain_reports_the_choice() -> None:
    res, why = _fake(compression_ratio="auto").explain(TEXT, "Where is the Louvre museum?")
    assert res.budget_choice is not None and why.budget_choice == res.budget_choice
    fixed, why_fixed = _fake().explain(TEXT, "Where is the Louvre museum?", ratio=0.3)
    assert fixed.budget_choice is None and why_fixed.budget_choice is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"min_ratio": 0.6, "max_ratio": 0.5}, "min_ratio (0.6) must be <= max_ratio (0.5)"),
        ({"compression_ratio": "auto", "budget_tokens": 50}, "budget_tokens=50"),
        ({"min_ratio": 0.0}, "min_ratio must be a number in (0, 1], got 0"),
        ({"max_ratio": 1.5}, "max_ratio must be a number in (0, 1], got 1.5"),
        ({"compression_ratio": "Auto"}, "compression_ratio"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"target_coverage": 0.0}, "target_coverage"),
    ],
)
def test_bad_auto_config_is_a_config_error_naming_the_value(
    config: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        SemTokenConfig(**config)  # type: ignore[arg-type]
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": "auto", "budget": 10}, "cannot be combined with budget=10"),
        ({"ratio": 0.0}, "got 0.0"),
        ({"ratio": 1.5}, "got 1.5"),
        ({"ratio": "automatic"}, "got 'automatic'"),
    ],
)
def test_bad_auto_call_is_an_invalid_input_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        _fake().compress([TEXT], "q", **kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_auto_with_external_scores_is_refused() -> None:
    comp = _fake()
    prepared = comp.prepare([TEXT])
    with pytest.raises(InvalidInputError, match="auto"):
        comp.plan(prepared, "q", ratio="auto", scores=np.zeros(len(prepared.unit_texts())))


# -- the real encoder ----------------------------------------------------------------------


@pytest.mark.slow
def test_real_questions_get_budgets_by_their_needs(
    real_compressor: Compressor, shared_data: Path
) -> None:
    """HotpotQA questions get coverage- or floor-driven budgets between the bounds, the same
    on a fresh engine; a summary request over a meeting transcript gets the ceiling."""
    auto = real_variant(real_compressor, compression_ratio="auto")
    rows = read_jsonl(shared_data / "hotpotqa_dev_sample" / "dev.jsonl", limit=12)
    ratios = []
    for r in rows:
        res = auto.compress(r["context"], r["question"])
        why = res.budget_choice
        assert why is not None and why.reason in ("coverage", "floor", "ceiling")
        assert 0.1 * res.original_tokens - 1 <= res.budget_tokens <= 0.5 * res.original_tokens
        again = real_variant(real_compressor, compression_ratio="auto")
        assert again.compress(r["context"], r["question"]).budget_choice == why
        ratios.append(res.budget_tokens / res.original_tokens)
    assert max(ratios) - min(ratios) > 0.1  # it does adapt: not one ratio for every question
    meeting = read_jsonl(shared_data / "leval" / "meeting_summ.jsonl", limit=1)[0]
    summary = auto.compress(meeting["context"][:6000], "Summarize the whole meeting.")
    assert summary.budget_choice.reason == "summary"


@pytest.mark.slow
def test_cli_compress_ratio_auto(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from semtoken_rag.cli.main import main

    f = tmp_path / "doc.txt"
    f.write_text(TEXT, encoding="utf-8")
    assert main(["compress", str(f), "-q", "When was the Eiffel Tower built?", "--ratio", "auto",
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    choice = out["budget_choice"]
    assert choice["reason"] in ("coverage", "floor", "ceiling")
    assert choice["tokens"] == out["budget_tokens"] and out["kept_tokens"] > 0
    with pytest.raises(SystemExit) as exit_:
        main(["compress", str(f), "--ratio", "automatic"])
    assert exit_.value.code == 2
    assert "ratio must be a number in (0, 1] or 'auto', got automatic" in capsys.readouterr().err


# -- fixed bugs ------------------------------------------------------------------------------
def test_auto_budget_pays_the_separators_between_force_kept_pieces() -> None:
    """Force-kept pieces are separated too: the chosen budget must pay those separators, or the
    covering unit it was sized for is cut by the partial fill (reported as ``coverage``)."""
    from semtoken_rag.core.budget import UnitRules, select_units

    matches = np.array([[0.1, 0.1, 0.1, 0.1, 0.9]], dtype=np.float32)  # unit 4 covers the word
    costs = np.array([2, 5, 2, 5, 6], dtype=np.int64)
    forced = np.array([True, False, True, False, False])  # two separate force-kept pieces
    scores = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
    got = choose_budget(matches, scores, costs, np.ones(5, bool), forced, _rule(separator_cost=3))
    # Kept: pieces {0}, {2}, {4} of one chunk, two separators between them.
    assert (got.tokens, got.reason) == (2 + 2 + 6 + 2 * 3, "coverage")
    words = np.fromiter((np.ones(int(c), np.int64) for c in costs), dtype=object, count=5)
    rules = UnitRules(forced=forced, word_costs=words, sep_cost=3)
    sel = select_units(scores.astype(np.float32), costs, got.tokens, rules)
    assert sel.kept.tolist() == [True, False, True, False, True] and sel.partial_unit == -1
    # Through the engine: three force-kept sentences and the covering one, kept in full.
    text = (
        "Forced1 one. Filler sentence number one here. Forced2 two. Filler sentence number two "
        "here. Forced3 three. Filler sentence number three here. Paris census counted everyone "
        "in the city today. Filler sentence number four here. More filler sentence five here."
    )
    comp = _fake(force_keep=[r"Forced\d"], compression_ratio="auto", min_ratio=0.01,
                 max_ratio=1.0, min_fill_tokens=1)  # fmt: skip
    res, why = comp.explain([text], "Paris census counted everyone")
    assert why.budget_choice is not None and why.budget_choice.reason == "coverage"
    assert "Paris census counted everyone in the city today." in res.texts[0]


def test_auto_coverage_is_measured_among_the_units_that_may_be_chosen() -> None:
    """A word's best match is taken among the candidates (a collapsed span offers only its
    representative): measured among all units the target is unreachable, every candidate is
    taken and the choice is still labelled ``coverage``."""
    scores = np.array([0.5, 0.1, 0.9, 0.8])  # candidates ranked 3, 0, 1
    candidates = np.array([True, True, False, True])  # unit 2, the best match of words 0, 1
    got = choose_budget(MATCHES, scores, COSTS, candidates, NONE, _rule(tolerance=0.15))
    # Among candidates: word 0 best 0.3 (unit 3), word 1 0.2 (unit 3 within 0.15), word 2 0.7
    # (unit 0): units 3 and 0 cover all three.
    assert (got.tokens, got.reason, got.coverage) == (40 + 10, "coverage", 1.0)
    sents = ["Alpha beta gamma.", "Delta epsilon zeta.", "Paris census counted.",
             "Eta theta iota.", "Kappa lambda mu.", "Nu xi omicron.", "Pi rho sigma.",
             "Tau upsilon phi."] * 2  # fmt: skip
    comp = _fake(compression_ratio="auto", similarity_threshold=-1.0, entropy_threshold=2.0,
                 max_ratio=1.0, min_ratio=0.01)  # fmt: skip
    _, why = comp.explain(" ".join(sents), "Paris census counted")
    assert why.unit_coarse.any()  # spans did collapse
    choice = why.budget_choice
    assert choice is not None and choice.reason == "coverage" and choice.coverage == 1.0


def test_coverage_reason_only_when_the_target_is_reached() -> None:
    nan = np.full((1, 4), np.nan, dtype=np.float32)  # no word can be covered
    got = choose_budget(nan, np.array([0.5, 0.1, 0.9, 0.0]), COSTS, ALL, NONE, _rule())
    assert got.coverage < 1.0 and got.reason != "coverage"


def test_auto_never_empties_a_single_sentence_longer_than_its_bound() -> None:
    """README: ``auto`` never gives an empty result.  An 11-word sentence under a 5-token bound
    (below ``min_fill_tokens``) is kept by its leading words; a fixed budget is unchanged."""
    text = "The census counted nine hundred people in Paris last year."
    comp = _fake(compression_ratio="auto")
    for query in ("How many people did the census count?", "Summarize", "What about volcanoes?"):
        res = comp.compress(text, query)
        assert res.budget_tokens == 5 and res.texts[0] == "The census counted nine hundred"
    assert _fake().compress(text, "census?", budget=5).texts == [""]  # min_fill_tokens holds


def test_auto_budget_ranks_near_ties_as_the_selection_does() -> None:
    """Scores that differ only in float noise (a repeated chunk's copies) are a tie the selection
    gives to the earlier unit: the budget must pay that unit, not the later copy, or the
    selection stops at the earlier one and keeps nothing that covers the question."""
    from semtoken_rag.core.budget import UnitRules, select_units

    matches = np.array([[0.9, 0.1, 0.9]], dtype=np.float32)  # units 0 and 2 both cover the word
    costs = np.array([8, 5, 3], dtype=np.int64)
    scores = np.array([0.7, 0.1, 0.7 + 1e-7], dtype=np.float32)  # unit 2: noise above unit 0
    got = choose_budget(matches, scores, costs, np.ones(3, bool), np.zeros(3, bool), _rule())
    assert (got.tokens, got.reason) == (8, "coverage")
    sel = select_units(scores, costs, got.tokens, UnitRules(min_fill_tokens=1000))
    assert sel.kept.tolist() == [True, False, False]


def test_per_chunk_budgets_keep_the_covering_units_in_their_own_chunks() -> None:
    """Shared by length alone, the short chunk holding the answer got 0 of the 10 tokens the
    rule chose for it (the long chunk spent them): the covering units' cost stays in their
    chunks, the rest is shared by the room each chunk has left."""
    from semtoken_rag.core.adaptive import chunk_needs, covering_set

    matches = np.array([[0.1, 0.1, 0.1, 0.1, 0.9]], dtype=np.float32)  # unit 4 covers the word
    costs = np.array([25, 25, 25, 25, 10], dtype=np.int64)
    unit_chunk = np.array([0, 0, 0, 0, 1])
    scores = np.array([0.2, 0.1, 0.1, 0.1, 0.9])
    forced, every = np.zeros(5, bool), np.ones(5, bool)
    rule = _rule(per_chunk=True, floor=30)
    choice = choose_budget(matches, scores, costs, every, forced, rule)
    assert (choice.tokens, choice.reason, choice.needed) == (30, "floor", 10)
    kept, n_chosen, _ = covering_set(matches, scores, every, forced, rule)
    needs = chunk_needs(kept, forced, costs, unit_chunk, 0, 2)
    assert needs.tolist() == [0, 10] and n_chosen == 1
    budgets = scope_budgets(choice, rule, np.array([100, 10]), needs)
    # 10 for unit 4, which is all of chunk 1: the 20 left go to chunk 0, the one with room (by
    # length, chunk 1 got 2 tokens more than it holds and chunk 0 lost them).
    assert budgets.tolist() == [20, 10]
    cut = scope_budgets(BudgetChoice(5, "ceiling"), rule, np.array([100, 10]), needs)
    assert cut.tolist() == [0, 5]  # a ceiling below the needs shrinks them alike


def test_a_small_per_chunk_auto_budget_is_never_rounded_to_nothing() -> None:
    rule = _rule(per_chunk=True)
    budgets = scope_budgets(BudgetChoice(3, "summary"), rule, np.array([10, 40, 10, 10]))
    assert budgets.tolist() == [0, 3, 0, 0]  # 3 x 10/70 and 3 x 40/70 floor to 0 each


@pytest.mark.slow
def test_per_chunk_auto_keeps_the_answer_of_a_short_chunk(real_compressor: Compressor) -> None:
    filler = " ".join(
        f"The weather in spring was mild and the harvest of year {i} was good." for i in range(12)
    )
    chunks = [filler, "The charter was restored by Queen Mathilda in 1820. It hangs in the hall."]
    for scope in ("joint", "per_chunk"):
        comp = real_variant(real_compressor, compression_ratio="auto", budget_scope=scope)
        res, why = comp.explain(chunks, "Who restored the charter?")
        assert why.budget_choice is not None and why.budget_choice.coverage == 1.0
        assert "restored by Queen Mathilda" in res.texts[1], scope


def test_auto_never_empties_when_the_best_units_first_word_is_over_the_budget() -> None:
    """An identifier or a URL as the best unit's first word: no leading words fit, so the
    best unit that fits whole is kept instead of nothing (``fill_small_budget`` only)."""
    from semtoken_rag.core.budget import UnitRules, select_units

    scores = np.array([0.9, 0.5, 0.1], dtype=np.float32)
    costs = np.array([12, 9, 3], dtype=np.int64)
    words = np.empty(3, dtype=object)
    words[:] = [np.array([10, 1, 1]), np.array([3, 3, 3]), np.array([1, 1, 1])]
    small = UnitRules(word_costs=words, min_fill_tokens=1, fill_small_budget=True)
    assert select_units(scores, costs, 5, small).kept.tolist() == [False, False, True]
    fixed = UnitRules(word_costs=words, min_fill_tokens=1)  # a fixed budget: the rule as ever
    sel = select_units(scores, costs, 5, fixed)
    assert not sel.kept.any() and sel.partial_unit == -1


@pytest.mark.slow
def test_auto_keeps_a_sentence_when_an_identifier_leads_the_best_one(
    real_compressor: Compressor,
) -> None:
    comp = real_variant(real_compressor, compression_ratio="auto")
    text = "ACME-4711-XZ-99812-QQ7-ABCDEFGHIJ-12345678 is the code. It is long."
    assert comp.compress([text], "What is the code?").texts == ["It is long."]
