"""Summary requests and the coverage objective on a real meeting transcript, real MiniLM.

Issue 15: a summary request ("Summarize the meeting") carries no question to rank by, so the
``auto`` objective switches to the summary objective (relevance plus a lead prior), and the
``coverage`` objective spends the budget on distinct content rather than on repeats.  The fake
encoder tests of ``test_coverage.py`` pin the arithmetic; these check that the real encoder's
fingerprints and the real tokenizer's budgets give the same behaviour on real text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from semtoken_rag import Compressor
from semtoken_rag.queries import is_summary_request
from tests.conftest import read_jsonl, real_variant

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcript(shared_data: Path) -> str:
    """The opening ~600 words of the first L-Eval meeting transcript."""
    row = read_jsonl(shared_data / "leval" / "meeting_summ.jsonl", limit=1)[0]
    words = row["context"].split()
    assert len(words) > 600
    return " ".join(words[:600])


def test_summary_request_keeps_the_transcripts_opening(
    real_compressor: Compressor, transcript: str
) -> None:
    query = "Summarize the whole meeting."
    assert is_summary_request(query) and real_compressor.config.selection.objective == "auto"
    auto = real_compressor.compress(transcript, query, ratio=0.25)
    relevance = real_variant(real_compressor, objective="relevance").compress(
        transcript, query, ratio=0.25
    )
    assert auto.kept_tokens <= auto.budget_tokens
    assert auto.chunks[0].offsets[0][0] == 0  # the lead is kept
    starts = [a for a, _ in auto.chunks[0].offsets]
    # the lead prior pulls the selection forward on average, relevance alone does not
    mean_auto = sum(starts) / len(starts)
    rel_starts = [a for a, _ in relevance.chunks[0].offsets]
    assert mean_auto < sum(rel_starts) / len(rel_starts)
    for a, b in auto.chunks[0].offsets:  # verbatim pieces of the source
        assert transcript[a:b] in auto.chunks[0].text


def test_a_question_about_the_meeting_is_ranked_by_relevance(
    real_compressor: Compressor, transcript: str
) -> None:
    query = "What did they say about the microphones?"
    assert not is_summary_request(query)
    auto = real_compressor.compress(transcript, query, ratio=0.25)
    relevance = real_variant(real_compressor, objective="relevance").compress(
        transcript, query, ratio=0.25
    )
    assert auto.chunks[0].offsets == relevance.chunks[0].offsets


def test_coverage_spends_the_budget_on_distinct_sentences(
    real_compressor: Compressor, transcript: str
) -> None:
    """Three sentences said four times, then nine said once: each repeat is kept at most once
    (coverage with the default near-duplicate skip) and the rest goes to distinct sentences."""
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", transcript) if len(s.split()) >= 8]
    assert len(sentences) >= 12
    repeated, distinct = sentences[:3], sentences[3:12]
    text = " ".join(repeated * 4 + distinct)
    comp = real_variant(real_compressor, objective="coverage")
    res = comp.compress(text, "Summarize the meeting.", ratio=0.35)
    kept = res.chunks[0].text
    assert res.kept_tokens <= res.budget_tokens
    for s in repeated:
        assert kept.count(s) <= 1, s
    assert sum(s in kept for s in distinct) >= 4
