"""``compression_ratio="auto"``: the coverage a choice reports is what the kept units cover.

Each test here failed before its fix: the rule paid for (and counted the matches of) units
the selection never keeps, so ``budget_choice`` said a question was covered while no kept unit
matched one of its words; and under a bound it reported the covering prefix, not what the
floor or the ceiling kept.  Coverage is checked the way a caller would check it with
``explain``: each query word's best match in the kept text (units kept in full, the leading
words of a unit kept in part), against its best match among the units the selection keeps when
every unit fits (a near-duplicate of a better ranked unit is never among them).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.adaptive import AdaptiveRule
from semtoken_rag.core.arrays import ContextArrays
from semtoken_rag.core.params import SelectionConfig
from semtoken_rag.core.pipeline import plan_context
from semtoken_rag.core.scoring import word_unit_matches
from semtoken_rag.queries import query_word_fingerprints
from tests.conftest import read_jsonl, real_variant
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.test_adaptive_budget import TEXT


def _fake(**cfg: object) -> Compressor:
    return Compressor(SemTokenConfig(**cfg), encoder=FakeEncoder(), counter=WhitespaceCounter())


def kept_coverage(
    comp: Compressor, chunks: list[str], query: str, tolerance: float = 0.05, **cfg: object
) -> float:
    """Share of the query's content words the text kept by ``ratio="auto"`` covers (units kept
    in full, the leading words of a unit kept in part; ``comp`` built from
    ``SemTokenConfig(**cfg)``)."""
    prepared = comp.prepare(chunks)
    plan = comp.plan(prepared, query, ratio="auto")
    # What may ever be kept: the whole text as budget, without separators, so all but the
    # near-duplicates fit.
    whole = Compressor(
        SemTokenConfig(**{**cfg, "compression_ratio": 1.0, "separator": ""}),  # type: ignore[arg-type]
        encoder=comp.encoder, store=comp.store, counter=comp.counter,
    )  # fmt: skip
    everything = whole.plan(prepared, query).core.kept
    words = query_word_fingerprints(comp.encoder, [query])[0]
    matches = word_unit_matches(words, plan.arrays.word_vectors, plan.arrays.unit_starts)
    best = matches[:, everything].max(axis=1)
    got = np.full(len(words), -np.inf, dtype=np.float32)
    if plan.core.kept.any():
        got = matches[:, plan.core.kept].max(axis=1)
    for unit in np.flatnonzero(plan.core.partial).tolist():  # the leading words of a unit
        start = int(plan.arrays.unit_starts[unit])
        lead = plan.arrays.word_vectors[start : start + int(plan.core.partial[unit])]
        got = np.maximum(got, (words @ lead.T).max(axis=1))
    return float((got >= best - tolerance).mean())


def _unit(*rows: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(r, np.float32) / np.linalg.norm(r) for r in rows]


def test_a_near_duplicate_the_selection_skips_is_not_paid_for_as_covering() -> None:
    """Unit 1 is the best match of ``q1`` but a near-duplicate of unit 0 (ranked first, kept):
    the rule paid units 0 and 1 (4 tokens), the selection skipped unit 1, and the answer for
    ``q1`` among keepable units (unit 2, 4 tokens) did not fit: reported covered, kept unit 0
    only.  The rule must pay for unit 2."""
    e1, e2, e3, e4 = np.eye(4, dtype=np.float32)
    words = [
        *_unit(e2, 0.9 * e1 + np.sqrt(0.19) * e3),  # unit 0: q2 1.0, q1 0.9 (ranked first)
        *_unit(e1, 0.85 * e2 + np.sqrt(1 - 0.85**2) * e3),  # unit 1: its near-duplicate
        *_unit(0.97 * e1 + np.sqrt(1 - 0.97**2) * e4, e4, e4, e4),  # unit 2: q1 0.97
        *_unit(e3, e4),  # unit 3: matches nothing
    ]
    ctx = ContextArrays(
        np.stack(words), np.ones(10, np.int64), np.array([0, 2, 4, 8]),
        np.zeros(4, np.int64), np.zeros(4, bool),
    )  # fmt: skip
    rule = AdaptiveRule(floor=0, ceiling=10)
    plan = plan_context(ctx, np.stack([e1, e2]), rule, SelectionConfig())
    choice = plan.budget_choice
    assert choice is not None and (choice.reason, choice.coverage) == ("coverage", 1.0)
    assert plan.kept.tolist() == [True, False, True, False] and choice.tokens == 6


#: Three copies of one sentence and of two others: "year" is best matched by the third copy
#: of "River train station." (a verbatim repeat, skipped) and, among what can be kept, by
#: "City france sea people mountain.".
REPEATS = (
    "City france sea people mountain. River train station. River train station. River train "
    "station. City france sea people mountain. Yellow winter city france river tower. Yellow "
    "winter city france river tower."
)


@pytest.mark.parametrize("scope", ["joint", "per_chunk"])
def test_reported_coverage_is_what_the_kept_units_cover(scope: str) -> None:
    cfg = {"compression_ratio": "auto", "min_ratio": 0.01, "max_ratio": 1.0, "budget_scope": scope}
    comp = _fake(**cfg)
    res, why = comp.explain([REPEATS], "engine queen year?")
    choice = why.budget_choice
    assert choice is not None and (choice.reason, choice.coverage) == ("coverage", 1.0)
    assert kept_coverage(comp, [REPEATS], "engine queen year?", **cfg) == 1.0
    assert "City france sea people mountain." in res.texts[0]


def _overlapping_windows(context: str, width: int = 3) -> list[str]:
    """Retrieved chunks that overlap: every run of ``width`` consecutive sentences."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", context.replace("\n", " ")) if s]
    return [" ".join(sentences[i : i + width]) for i in range(len(sentences) - width + 1)]


@pytest.mark.slow
def test_real_overlapping_chunks_report_what_is_kept(
    real_compressor: Compressor, shared_data: Path
) -> None:
    """HotpotQA question over overlapping chunks (each sentence in up to three of them, so most
    copies are skipped as repeats): the choice said 1.0 while the kept text covered 10 of
    11 words (the rule paid for a copy the selection skipped)."""
    rows = read_jsonl(shared_data / "hotpotqa_dev_sample" / "dev.jsonl", limit=100)
    row = next(r for r in rows if r["id"] == "5ab7bae95542993667793ff4")
    chunks = _overlapping_windows(row["context"])
    cfg = {"compression_ratio": "auto"}
    comp = real_variant(real_compressor, **cfg)
    choice = comp.compress(chunks, row["question"]).budget_choice
    assert choice is not None and choice.coverage == 1.0
    assert kept_coverage(comp, chunks, row["question"], **cfg) == 1.0


@pytest.mark.parametrize("scope", ["joint", "per_chunk"])
def test_a_ceiling_reports_what_it_kept_not_what_it_would_have_needed(scope: str) -> None:
    """``max_tokens=3`` keeps the leading three words of the best sentence: the choice said
    coverage 1.0 (the covering prefix it could not pay for)."""
    cfg = {"compression_ratio": "auto", "max_tokens": 3, "budget_scope": scope}
    comp, query = _fake(**cfg), "When was the Eiffel Tower completed for the World Fair?"
    res, why = comp.explain([TEXT], query)
    choice = why.budget_choice
    assert choice is not None and choice.reason == "ceiling" and res.texts == ["The Eiffel Tower"]
    assert choice.coverage == kept_coverage(comp, [TEXT], query, **cfg) < 1.0


def test_a_floor_reports_everything_it_kept() -> None:
    """Half the words suffice (``target_coverage=0.5``), the floor keeps half the text: the
    choice said 2 of 3 words (the prefix) while what the floor kept covers all three."""
    cfg = {"compression_ratio": "auto", "target_coverage": 0.5, "min_ratio": 0.5}
    comp, query = _fake(**cfg), "Eiffel Tower potassium"
    choice = comp.compress([TEXT], query).budget_choice
    assert choice is not None and choice.reason == "floor"
    assert choice.coverage == kept_coverage(comp, [TEXT], query, **cfg) == 1.0


@pytest.mark.parametrize("seed", range(60))
def test_keepable_units_without_a_selection_pass_are_the_selections(seed: int) -> None:
    """The units a selection keeps when every unit fits are found by walking only the units
    with a near-duplicate or a lexical suspect (a full selection pass raised the ``auto``
    overhead on warm compression from +2% to +12-18%); they must be exactly the selection's."""
    from semtoken_rag.core.autoselect import keepable_units
    from semtoken_rag.core.budget import UnitRules, select_context

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    chunk = np.sort(rng.integers(0, 3, n)).astype(np.int64)
    chunk = np.unique(chunk, return_inverse=True)[1].astype(np.int64)  # chunks 0..k, no gaps
    forced = rng.random(n) < 0.1
    costs = rng.integers(1, 9, n).astype(np.int64)
    ctx = ContextArrays(rng.standard_normal((n, 4)).astype(np.float32), costs, np.arange(n),
                        chunk, forced)  # fmt: skip
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, n, (n // 2, 2)) if a != b}
    rows = sorted(pairs | {(b, a) for a, b in pairs})
    indptr = np.searchsorted([r[0] for r in rows], np.arange(n + 1)).astype(np.int64)
    dups = (indptr, np.asarray([r[1] for r in rows], dtype=np.int64))
    dups = dups if seed % 3 else None  # without: only lexical suspects are walked
    sizes = rng.integers(0, 5, n)  # a unit's shingles, from few values: repeats happen
    values = rng.integers(0, [12, 40, 200][seed % 3], sizes.sum()).astype(np.uint64)
    shingles = (np.r_[0, np.cumsum(sizes)].astype(np.int64), values)
    scores = rng.standard_normal(n).astype(np.float32)
    scores[rng.integers(0, n, 3)] = 0.5  # ties go to the earlier unit
    rules = UnitRules(rng.random(n) < 0.8, duplicates=dups, shingles=shingles,
                      sep_cost=int(rng.integers(0, 3)))  # fmt: skip
    threshold = [None, 0.3, 0.8, 1.0][seed % 4]
    params = SelectionConfig(lexical_dedup_threshold=threshold)
    for per_chunk in (False, True):
        groups = int(chunk[-1]) + 1 if per_chunk else 1
        budgets = np.full(groups, 10**6, dtype=np.int64)
        whole = select_context(ctx, scores, ctx.word_costs, budgets, params, rules)[0]
        got = keepable_units(ctx, scores, params, rules, per_chunk)
        assert got.tolist() == whole.tolist(), (seed, per_chunk)
