"""How a call's budget is shared: ratios as written, and shares per chunk.

A ratio of the text is read as the decimal it is written: binary floating point puts
``0.58 * 100`` just under 58, so a plain ``floor`` kept one token less than asked (and
``ceil(0.07 * 100)`` one more for the ``auto`` floor).  With ``budget_scope="per_chunk"`` an
absolute budget is shared by length with every token kept, and each chunk's force-keep
overshoot is its own.
"""

from __future__ import annotations

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from tests.fakes import FakeEncoder, WhitespaceCounter

#: 100 words in 10 sentences (the whitespace counter counts one token per word).
TEXT = " ".join(f"Sentence {i} holds ten plain words about the topic{i} here." for i in range(10))
#: Each ratio times 100 lands just under its integer in binary floating point.
UNDER = [0.29, 0.57, 0.58]


def _fake(**cfg: object) -> Compressor:
    return Compressor(SemTokenConfig(**cfg), encoder=FakeEncoder(), counter=WhitespaceCounter())


def test_the_text_has_the_expected_length() -> None:
    assert _fake().compress([TEXT], "topic3", ratio=1.0).original_tokens == 100
    assert [int(r * 100) for r in UNDER] == [28, 56, 57]  # the float products this guards


@pytest.mark.parametrize("ratio", UNDER)
@pytest.mark.parametrize("scope", ["joint", "per_chunk"])
def test_a_call_ratio_gives_its_decimal_share(ratio: float, scope: str) -> None:
    res = _fake(budget_scope=scope).compress([TEXT], "topic3", ratio=ratio)
    assert res.budget_tokens == round(ratio * 100)


@pytest.mark.parametrize("ratio", UNDER)
def test_the_config_ratio_gives_its_decimal_share(ratio: float) -> None:
    res = _fake(compression_ratio=ratio).compress([TEXT], "topic3")
    assert res.budget_tokens == round(ratio * 100)


def test_a_float_product_that_rounds_to_the_integer_stays_it() -> None:
    """``1/3`` of 3 tokens: the float product is exactly 1.0 (reading the ratio as its decimal
    ``0.3333333333333333`` made it 0)."""
    from semtoken_rag.budgets import ratio_tokens

    assert ratio_tokens(1 / 3, 3) == 1 and ratio_tokens(1 / 3, 3, up=True) == 1
    assert ratio_tokens(1 / 3, 10**9) == 333_333_333
    assert ratio_tokens(0.5, 0) == 0 and ratio_tokens(0.999, 1000, up=True) == 999
    assert _fake().compress(["the the the."], None, ratio=1 / 3).budget_tokens == 1


def test_auto_bounds_are_the_decimal_shares() -> None:
    # min_ratio 0.07 of 100 is 7.000000000000001 in floats: ceil gave 8.
    comp = _fake(min_ratio=0.07, max_ratio=0.58)
    assert comp.compress([TEXT], None, ratio="auto").budget_tokens == 58  # no query: ceiling
    assert comp.compress([TEXT], "zzz unrelated", ratio="auto").budget_tokens >= 7
    floor_only = _fake(min_ratio=0.07, max_ratio=0.07)
    assert floor_only.compress([TEXT], "topic3", ratio="auto").budget_tokens == 7


# --- per_chunk scope: an absolute budget is shared by length, every token of it -------------

#: Twelve one-sentence chunks of 11 words, as a retriever returns short nodes.
NODES = [f"Fact {i}: the charter of the town was restored in {1900 + i}." for i in range(12)]


def test_share_by_weight_keeps_every_token_and_gives_rounding_to_the_heaviest() -> None:
    from semtoken_rag.core.adaptive import share_by_weight

    assert share_by_weight(100, np.array([29, 71])).tolist() == [29, 71]  # 29/100*100 is 28.99..
    assert share_by_weight(11, np.array([11] * 12)).tolist() == [11] + [0] * 11
    assert share_by_weight(7, np.array([0, 0])).tolist() == [4, 3]  # all zero: equal
    assert share_by_weight(0, np.array([5, 5])).tolist() == [0, 0]
    # The remainder goes heaviest first, each up to its weight: 54 for a 50-token chunk
    # could not be spent while the 10-token ones lacked a token each.
    assert share_by_weight(99, np.array([50, 10, 10, 10, 10, 10])).tolist() == [50] + [10] * 4 + [9]
    assert share_by_weight(37, np.array([20, 6, 6, 6])).tolist() == [20, 6, 6, 5]
    assert share_by_weight(200, np.array([50, 10])).tolist() == [167, 33]  # past them: by weight


def test_a_per_chunk_budget_is_spent_to_the_token_where_every_share_fits() -> None:
    long = " ".join(f"Sentence {i} of the long chunk has ten words here." for i in range(5))
    short = [f"Chunk {i} holds ten plain words about the main topic." for i in range(5)]
    off = {"dedup_threshold": None, "lexical_dedup_threshold": None, "fill_partial": False}
    comp = _fake(budget_scope="per_chunk", **off)
    res = comp.compress([long, *short], None, budget=99)
    assert [c.original_tokens for c in res.chunks] == [50] + [10] * 5
    assert [c.budget_tokens for c in res.chunks] == [50] + [10] * 4 + [9]
    assert res.kept_tokens == 90  # every chunk whole but the last (one sentence, 10 > 9)


@pytest.mark.parametrize("budget", [11, 60, 100])
def test_a_per_chunk_budget_is_spent_whole(budget: int) -> None:
    res = _fake(budget_scope="per_chunk").compress(
        NODES, "When was the charter restored?", budget=budget
    )
    assert res.original_tokens == 132
    assert res.budget_tokens == budget  # floors of float shares reported 0 for budget=11
    assert 0 < res.kept_tokens <= budget  # shares of 5 below min_fill_tokens kept nothing


def test_a_per_chunk_budget_as_large_as_the_text_keeps_it_all() -> None:
    a = " ".join(f"w{i}" for i in range(28)) + " end."  # 29 tokens: 29/100*100 floored to 28
    b = " ".join(f"v{i}" for i in range(70)) + " end."
    off = {"dedup_threshold": None, "lexical_dedup_threshold": None}
    res = _fake(budget_scope="per_chunk", **off).compress([a, b], "query", budget=100)
    assert [c.kept_tokens for c in res.chunks] == [29, 71]
    auto = _fake(
        budget_scope="per_chunk", compression_ratio="auto", min_ratio=1.0, max_ratio=1.0, **off
    )
    summary = auto.compress([a, b], None)
    assert [c.kept_tokens for c in summary.chunks] == [29, 71]


def test_per_chunk_overshoot_is_counted_chunk_by_chunk() -> None:
    """Chunk 0's force-kept numbers go 8 tokens over its share of 5; chunk 1's unspent share
    used to offset them (``overshoot_tokens`` said 5)."""
    a = "Order 1 2 3 4 5 6 7 8 9 10 11 12. Alpha beta gamma delta."  # numbers force-kept
    b = "One two three four five six seven eight nine ten eleven twelve thirteen."
    comp = _fake(budget_scope="per_chunk", force_keep_presets=("numbers",))
    res = comp.compress([a, b], "Greek letters", ratio=0.3)
    shares = [c.budget_tokens for c in res.chunks]
    assert shares == [5, 3] and res.budget_tokens == 8
    assert res.chunks[0].kept_tokens == res.chunks[0].forced_tokens == 13
    assert res.overshoot_tokens == 13 - 5
    joint = _fake(force_keep_presets=("numbers",)).compress([a, b], "Greek letters", ratio=0.3)
    assert [c.budget_tokens for c in joint.chunks] == [None, None]
    assert joint.overshoot_tokens == max(0, joint.kept_tokens - joint.budget_tokens)


def test_auto_per_chunk_reports_each_chunks_share_and_overshoot() -> None:
    """With ``ratio="auto"`` the chunks' shares the rule chose were dropped for one joint
    number: every ``budget_tokens`` was ``None`` and one chunk's force-keep overshoot was
    netted against another's unspent share, as a fixed per-chunk budget no longer does."""
    a = "Order 1 2 3 4 5 6 7 8 9 10 11 12. Alpha beta gamma delta."  # numbers force-kept
    b = "One two three four five six seven eight nine ten eleven twelve thirteen."
    comp = _fake(
        budget_scope="per_chunk",
        force_keep_presets=("numbers",),
        compression_ratio="auto",
        min_ratio=0.1,
        max_ratio=0.3,
    )
    res = comp.compress([a, b], None)  # no question: the ceiling, shared by length
    shares = [c.budget_tokens for c in res.chunks]
    assert res.budget_choice is not None and res.budget_choice.reason == "summary"
    assert shares == [6, 3] and sum(shares) == res.budget_tokens == 9  # ceil(0.3 * 30)
    assert res.chunks[0].kept_tokens == res.chunks[0].forced_tokens == 13
    over = sum(max(0, c.kept_tokens - (c.budget_tokens or 0)) for c in res.chunks)
    assert res.overshoot_tokens == over == 13 - 6
