"""Hostile review of the numeric core, round 2: what broke, pinned.

* Score weights near the float32 maximum (``relevance_weight``, ``entropy_weight``,
  ``lead_weight`` accept any finite number): the float32 weighted sum overflowed to ``inf``
  (``inf - inf``: NaN), so units tied at ``inf`` were kept by position, NaN ones last, and
  ``explain`` reported non-finite scores.  Scaling every weight by one factor must not change
  what is kept.  The coverage objective's weights (``entropy_weight``, ``coverage_relevance``)
  overflowed the same way before their exponential (NaN gains).
* ``dedup_threshold=1.0`` (the largest the config accepts; no cosine exceeds 1): exact copies
  compute to 1 within float32 noise, so some copies were skipped as near-duplicates and others
  kept, differently by the numpy and the FAISS search.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.pooling import l2_normalize
from semtoken_rag.core.redundancy import near_duplicate_pairs
from semtoken_rag.core.scoring import combined_score, standardize, weighted_sum
from tests.fakes import FakeEncoder, WhitespaceCounter

F32_MAX = float(np.finfo(np.float32).max)
VOCAB = ["alpha", "beta", "gamma", "delta", "Krag", "cat", "dog", "mat"]
VOCAB += ["sat", "ran", "fell", "rose", "42", "today", "nice", "stock"]


def fake(**config: object) -> Compressor:
    return Compressor(SemTokenConfig(**config), encoder=FakeEncoder(), counter=WhitespaceCounter())


def sample_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sents = [" ".join(rng.choice(VOCAB, rng.integers(2, 8))) + "." for _ in range(8)]
        out.append(" ".join(sents))
    return out


# -- weights near the float32 maximum -------------------------------------------------------
@pytest.mark.parametrize(
    "weights",
    [
        {"relevance_weight": 1.0, "entropy_weight": 1.0, "lead_weight": 1.0},
        {"relevance_weight": 1.0, "lead_weight": 1.0, "objective": "summary"},
        {"relevance_weight": 1.0, "entropy_weight": 0.5, "objective": "relevance"},
    ],
)
@pytest.mark.parametrize("query", ["Who is Krag?", None])
def test_weights_scaled_to_the_float32_maximum_keep_the_same_text(
    weights: dict[str, object], query: str | None
) -> None:
    huge = {k: v * F32_MAX if isinstance(v, float) else v for k, v in weights.items()}
    small, big = fake(similarity_threshold=0.0, **weights), fake(similarity_threshold=0.0, **huge)
    for text in sample_texts(12):
        want = small.compress(text, query, ratio=0.4)
        got, why = big.explain(text, query, ratio=0.4)
        assert np.isfinite(why.unit_score).all(), why.unit_score
        assert got.chunks[0].text == want.chunks[0].text


def test_coverage_weights_at_the_float32_maximum_are_not_nan() -> None:
    # exp(w * z) is one-hot long before 1e30: the largest weights must keep that limit, not
    # make the weight sum inf - inf (NaN gains, a garbage greedy order).
    huge, large = ({"entropy_weight": w, "coverage_relevance": w} for w in (F32_MAX, 1e30))
    big, ref = fake(objective="coverage", **huge), fake(objective="coverage", **large)
    for text in sample_texts(12, seed=5):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            got, why = big.explain(text, "Who is Krag?", ratio=0.4)
        assert np.isfinite(why.unit_score).all()
        assert got.chunks[0].text == ref.compress(text, "Who is Krag?", ratio=0.4).chunks[0].text


#: Any finite weight float32 can multiply without underflow (weights below ~1e-30 vanish in
#: float32, and the selection's 5-decimal tie rule merges scores below 1e-5 anyway).
WEIGHT = st.one_of(st.just(0.0), st.floats(1e-30, 1.7e308))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    w_rel=WEIGHT,
    w_ent=WEIGHT,
    w_lead=WEIGHT,
    seed=st.integers(0, 10_000),
)
def test_unit_scores_are_finite_and_ordered_for_any_finite_weights(
    w_rel: float, w_ent: float, w_lead: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    terms = [standardize(rng.standard_normal(9).astype(np.float32)) for _ in range(3)]
    got = weighted_sum(terms, [w_rel, w_ent, w_lead])
    assert got.dtype == np.float32 and np.isfinite(got).all()
    top = max(w_rel, w_ent, w_lead)
    if top > 0:  # the order of the exact sum (float64, weights over the largest)
        exact = sum((w / top) * t.astype(np.float64) for t, w in zip(terms, (w_rel, w_ent, w_lead)))
        gap = np.diff(np.sort(exact)).min()
        if gap > 1e-6 * np.abs(exact).max():  # no near-tie that float32 may merge
            assert np.array_equal(np.argsort(got, kind="stable"), np.argsort(exact, kind="stable"))


def test_a_finite_float32_sum_is_returned_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    rel, ent = rng.random(50).astype(np.float32), rng.random(50).astype(np.float32)
    want = (1.0 * standardize(rel) + 0.1 * standardize(ent)).astype(np.float32)
    assert combined_score(rel, ent, 1.0, 0.1).tobytes() == want.tobytes()


def test_opposite_huge_terms_are_not_nan() -> None:
    rel = np.array([0.0, 1.0, 0.5], np.float32)
    got = combined_score(rel, -rel, F32_MAX, F32_MAX / 2)
    assert np.isfinite(got).all()
    assert np.argsort(got).tolist() == np.argsort(combined_score(rel, -rel, 1.0, 0.5)).tolist()


# -- dedup_threshold=1.0 --------------------------------------------------------------------
TEXT = (
    "The cat sat on the mat. Krag is 42 years old. Weather is nice today. "
    "Stocks fell sharply on Monday. A dog ran home."
)


@pytest.mark.parametrize("backend", ["numpy", "faiss", "auto"])
def test_threshold_one_skips_no_exact_copy_in_any_backend(backend: str) -> None:
    comp = Compressor(
        SemTokenConfig(dedup_threshold=1.0, lexical_dedup_threshold=None, dedup_backend=backend),
        encoder=FakeEncoder(384),
        counter=WhitespaceCounter(),
    )
    res = comp.compress([TEXT, TEXT, TEXT], None, ratio=1.0)
    assert res.dedup_saved_tokens == 0
    assert [c.text for c in res.chunks] == [TEXT] * 3


def test_threshold_one_pairs_nothing_whatever_the_float_noise() -> None:
    pytest.importorskip("faiss")
    from semtoken_rag.dedup import near_duplicates

    rng = np.random.default_rng(0)
    x = np.repeat(l2_normalize(rng.standard_normal((5, 384)).astype(np.float32)), 3, axis=0)
    for search in (near_duplicate_pairs, near_duplicates):
        indptr, indices = search(x, 1.0)
        assert indptr.tolist() == [0] * (len(x) + 1) and indices.size == 0
        assert indptr.dtype == indices.dtype == np.int64
    # Below 1 the copies are partners, as before.
    assert near_duplicate_pairs(x, 0.999)[1].size == near_duplicates(x, 0.999)[1].size == 30
