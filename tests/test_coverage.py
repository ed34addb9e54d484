"""Coverage objective (issue 15): the budget buys distinct topics when the query says little."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.coverage import coverage_scores, neighbour_graph
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.pipeline import objective_for
from semtoken_rag.core.pooling import l2_normalize
from semtoken_rag.core.scoring import lead_prior
from semtoken_rag.queries import is_summary_request
from tests.fakes import FakeEncoder, WhitespaceCounter


def clusters(sizes: list[int], dim: int = 16, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.standard_normal((len(sizes), dim)).astype(np.float32))
    rows = [c + noise * rng.standard_normal((n, dim)) for c, n in zip(centres, sizes, strict=True)]
    return l2_normalize(np.concatenate(rows).astype(np.float32))


def test_neighbour_graph_holds_the_most_similar_units() -> None:
    x = clusters([4, 4])
    index, sim = neighbour_graph(x, 4)
    assert index.shape == (8, 4) and (sim >= 0).all()
    for j in range(8):
        assert set(index[j].tolist()) == set(range(4) if j < 4 else range(4, 8))


def test_coverage_picks_one_unit_per_topic_first() -> None:
    # A big repeated topic (10 near-copies) and three small ones: relevance to the centroid
    # would keep the repeats; coverage takes one of each topic before any second copy.
    x = clusters([10, 1, 1, 1])
    scores = coverage_scores(x, np.ones(13, dtype=np.int64), neighbours=13)
    first4 = set(np.argsort(-scores)[:4].tolist())
    assert {10, 11, 12} <= first4 and len(first4 & set(range(10))) == 1
    assert sorted(scores.tolist()) == list(range(1, 14))  # a strict order, every unit ranked


def test_coverage_weights_and_costs_shift_the_order() -> None:
    x = clusters([1, 1])
    costs = np.array([1, 1], dtype=np.int64)
    heavy_second = coverage_scores(x, costs, np.array([1.0, 5.0]))
    assert heavy_second[1] > heavy_second[0]
    expensive_second = coverage_scores(x, np.array([1, 50], dtype=np.int64), np.array([1.0, 5.0]))
    assert expensive_second[0] > expensive_second[1]  # gain per token


def test_coverage_handles_empty_and_single() -> None:
    assert coverage_scores(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)).shape == (0,)
    assert coverage_scores(clusters([1]), np.ones(1, np.int64)).tolist() == [1.0]


@pytest.mark.parametrize(
    ("objective", "has_query", "generic", "want"),
    [
        ("relevance", True, True, "relevance"),
        ("coverage", True, False, "coverage"),
        ("auto", True, False, "relevance"),
        ("auto", True, True, "summary"),
        ("auto", False, False, "summary"),
        ("summary", True, False, "summary"),
    ],
)
def test_objective_resolution(objective: str, has_query: bool, generic: bool, want: str) -> None:
    assert objective_for(SelectionConfig(objective=objective), has_query, generic) == want


@pytest.mark.parametrize(
    ("query", "generic"),
    [
        ("Summarize the meeting.", True),
        ("Please help me summarize this government report.", True),
        ("What are the key points?", True),
        ("What is this document about?", True),
        ("Who restored the charter?", False),
        ("What was agreed upon on sample transcripts?", False),
        (None, False),
    ],
)
def test_summary_requests_are_recognised(query: str | None, generic: bool) -> None:
    assert is_summary_request(query) is generic


def test_lead_prior_ranks_each_chunk_from_its_start() -> None:
    prior = lead_prior(np.array([0, 0, 0, 1, 1, 2]))
    assert prior.tolist() == [0.0, -0.5, -1.0, 0.0, -1.0, 0.0]
    assert lead_prior(np.zeros(0, np.int64)).shape == (0,)


def test_summary_request_keeps_the_lead_relevance_question_does_not() -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(20))
    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    summary = comp.compress(text, "Summarize the report.", ratio=0.3).chunks[0]
    assert summary.offsets[0][0] == 0  # the lead is kept
    plain = Compressor(
        SemTokenConfig(objective="relevance"), encoder=FakeEncoder(), counter=WhitespaceCounter()
    )
    assert plain.compress(text, "Summarize the report.", ratio=0.3).chunks[0] != summary


def test_engine_coverage_keeps_distinct_sentences() -> None:
    repeated = "The budget was approved by the committee. " * 6
    distinct = "Lunch was served at noon. The fire alarm was tested. A new intern joined."
    text = repeated + distinct
    comp = Compressor(
        SemTokenConfig(objective="coverage", dedup_threshold=None, lexical_dedup_threshold=None),
        encoder=FakeEncoder(),
        counter=WhitespaceCounter(),
    )
    res = comp.compress(text, "Summarize the meeting.", ratio=0.4)
    kept = res.chunks[0].text
    assert kept.count("The budget was approved") == 1
    for sentence in ("Lunch was served", "fire alarm", "new intern"):
        assert sentence in kept
    assert res.kept_tokens <= res.budget_tokens


def test_entropy_mode_without_a_query_scores_by_entropy_under_the_zero_default() -> None:
    """``no_query_mode="entropy"`` is the paper's top-H: its scores are the span entropy even
    now that ``entropy_weight`` defaults to 0 (else every unit would score 0)."""
    text = " ".join(
        f"Sentence {i} mentions items {' '.join(map(str, range(i + 1)))}." for i in range(12)
    )
    cfg = SemTokenConfig(no_query_mode="entropy", objective="relevance")
    assert cfg.selection.entropy_weight == 0.0
    comp = Compressor(cfg, encoder=FakeEncoder(), counter=WhitespaceCounter())
    plan = comp.plan(comp.prepare([text]), None, ratio=0.5)
    ex = plan.explain()
    scores, entropy = np.asarray(ex.unit_score), np.asarray(ex.unit_entropy)
    assert np.ptp(entropy) > 0 and np.ptp(scores) > 0
    assert np.array_equal(np.argsort(-scores, kind="stable"), np.argsort(-entropy, kind="stable"))


def test_a_large_coverage_relevance_does_not_overflow_the_weights() -> None:
    """``exp`` of the float32 log-weights overflowed to inf from ``coverage_relevance`` ~16 on:
    the gains became NaN and the most relevant sentence was dropped.  The weights are scaled
    (largest 1), and the greedy's slack is relative, so the order is the one of small values."""
    fill = [f"Word{i} thing{i} stuff{i}." for i in range(60)]
    chunks = [" ".join(fill[:30]) + " Paris census population count.", " ".join(fill[30:])]
    kept = []
    for rel in (12.0, 16.0, 50.0):
        comp = Compressor(
            SemTokenConfig(objective="coverage", coverage_relevance=rel),
            encoder=FakeEncoder(),
            counter=WhitespaceCounter(),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow / invalid-value warning either
            kept.append(comp.compress(chunks, "Paris census population?", ratio=0.05).texts[0])
    assert "Paris census population count." in kept[0]
    assert kept[1] == kept[2] == kept[0]
    # One common factor on every weight, however small, leaves the greedy order unchanged.
    x = clusters([5, 3, 2, 1], seed=3)
    w = np.random.default_rng(1).random(len(x)) + 0.1
    costs = np.ones(len(x), dtype=np.int64)
    assert np.array_equal(coverage_scores(x, costs, w), coverage_scores(x, costs, w * 1e-30))
