"""A ratio of the text is read as the decimal it is written: 0.58 of 100 tokens is 58.

Binary floating point puts ``0.58 * 100`` just under 58, so a plain ``floor`` kept one token
less than asked (and ``ceil(0.1 * 30)`` one more for the ``auto`` floor).
"""

from __future__ import annotations

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


def test_auto_bounds_are_the_decimal_shares() -> None:
    # min_ratio 0.07 of 100 is 7.000000000000001 in floats: ceil gave 8.
    comp = _fake(min_ratio=0.07, max_ratio=0.58)
    assert comp.compress([TEXT], None, ratio="auto").budget_tokens == 58  # no query: ceiling
    assert comp.compress([TEXT], "zzz unrelated", ratio="auto").budget_tokens >= 7
    floor_only = _fake(min_ratio=0.07, max_ratio=0.07)
    assert floor_only.compress([TEXT], "topic3", ratio="auto").budget_tokens == 7
