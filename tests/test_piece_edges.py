"""A piece cut inside a long run reads no more of the reader's tokens than it was charged.

A counter shares a text's tokens among its words, but a kept piece is read alone, and a cut
where a long run was hard-wrapped at 64 characters (a URL) splits a token.  Charged the shares
alone, such pieces read 1-2 tokens over their budget (MiniLM, word units, URLs: 6 runs of 300
over budget).
"""

from __future__ import annotations

import numpy as np
import pytest

from semtoken_rag.budgets import piece_edge_costs
from semtoken_rag.core.segment import find_words, wrapped_words
from tests.conftest import real_variant
from tests.fakes import WhitespaceCounter


class _AloneCounter:
    """One token a word in context; a text read alone costs one more (the half of a token a cut
    leaves)."""

    name = "alone"

    def count(self, text: str) -> int:
        return len(find_words(text)) + 1

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        return np.ones(len(word_spans), dtype=np.int64)


def test_wrapped_words_are_both_sides_of_a_hard_wrap() -> None:
    text = "see " + "x" * 130 + " and 中国 ok " + "z" * 64
    spans = find_words(text)
    assert [text[s:e] for s, e in spans.tolist()][1:4] == ["x" * 64, "x" * 64, "xx"]
    assert wrapped_words(spans).tolist() == [1, 2, 3]
    assert wrapped_words(find_words("plain words only")).tolist() == []
    assert wrapped_words(find_words("")).tolist() == []


def test_words_beside_a_wrap_are_charged_what_they_cost_alone() -> None:
    text = "Alpha beta gamma. Delta " + "y" * 70 + " epsilon."
    spans = find_words(text)
    costs = piece_edge_costs(_AloneCounter(), text, spans)
    # Both halves of the wrapped run (4, 5) cost 2 alone; the rest keep their share of 1.
    assert costs.tolist() == [1, 1, 1, 1, 2, 2, 1]
    assert not costs.flags.writeable
    # Where nothing costs more alone, the counter's own costs come back unchanged.
    assert piece_edge_costs(WhitespaceCounter(), text, spans).tolist() == [1] * 7


def _check_pieces(comp, chunks: list[str], queries: tuple[str, ...], budgets: range) -> int:
    """Every budget: each chunk's text counts at most what it was charged, the call at most its
    budget.  Returns how many chunks were cut somewhere (so the test cannot pass vacuously)."""
    cut = 0
    for query, budget in ((q, b) for q in queries for b in budgets):
        res = comp.compress(chunks, query, budget=budget)
        for c in res.chunks:
            assert comp.counter.count(c.text) <= c.kept_tokens, (budget, c.text)
            cut += int(0 < c.kept_tokens < c.original_tokens)
        assert res.kept_tokens <= res.budget_tokens == budget
    return cut


@pytest.mark.slow
def test_pieces_cut_inside_long_urls_stay_within_budget(real_compressor) -> None:
    comp = real_variant(real_compressor, unit="word")
    url = "https://example.org/archive/" + "a9Zq0-_x" * 20
    chunks = [
        f"The mill ground grain for centuries, see {url} for records. "
        f"Old maps {url[::-1]} show the river bank.",
        f"Grain was ground north of the bank {url.upper()} until the flood.",
    ]
    queries = ("where was grain ground", "old maps")
    assert _check_pieces(comp, chunks, queries, range(1, 150, 4)) > 10
