"""``SemTokenConfig.dedup_backend``: which near-duplicate search runs, and the FAISS fallback.

Synthetic unit vectors (clusters of noisy copies) stand in for a context; the threshold of the
``auto`` backend is lowered so "a large context" stays small.  FAISS is made unavailable by
putting ``None`` in ``sys.modules`` (``import faiss`` then raises ``ModuleNotFoundError``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from semtoken_rag import Compressor, SemTokenConfig, dedup
from semtoken_rag.core.pooling import l2_normalize
from semtoken_rag.core.redundancy import near_duplicate_pairs
from semtoken_rag.errors import MissingDependencyError
from tests.fakes import FakeEncoder, WhitespaceCounter

HAS_FAISS = importlib.util.find_spec("faiss") is not None
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason="FAISS is not installed")
THRESHOLD = 0.9

CSR = tuple[np.ndarray, np.ndarray]


def _vectors(n_clusters: int = 12, copies: int = 4, dim: int = 16) -> np.ndarray:
    """``(n_clusters * copies, dim)`` unit vectors: each cluster's rows are near-duplicates."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    rows = np.repeat(base, copies, axis=0)
    rows += 0.05 * rng.standard_normal(rows.shape).astype(np.float32)
    return l2_normalize(rows)


def _same(a: CSR, b: CSR) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


class _Spy:
    """Wraps a search and records how many vectors each call got."""

    def __init__(self, search: Callable[[np.ndarray, float], CSR]) -> None:
        self.search = search
        self.calls: list[int] = []

    def __call__(self, vectors: np.ndarray, threshold: float) -> CSR:
        self.calls.append(len(vectors))
        return self.search(vectors, threshold)


@pytest.fixture
def no_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)


@pytest.fixture
def faiss_spy(monkeypatch: pytest.MonkeyPatch) -> _Spy:
    """The FAISS search, recorded (delegating to the numpy search when FAISS is absent, so the
    choice of backend is tested everywhere)."""
    spy = _Spy(dedup.near_duplicates if HAS_FAISS else near_duplicate_pairs)
    monkeypatch.setattr(dedup, "near_duplicates", spy)
    return spy


def test_synthetic_vectors_have_near_duplicates() -> None:
    indptr, _ = near_duplicate_pairs(_vectors(), THRESHOLD)
    assert (np.diff(indptr) == 3).all()  # each row's 3 cluster mates, nothing else


def test_numpy_backend_is_the_cores_own_search() -> None:
    assert dedup.dedup_backend("numpy") is None


@needs_faiss
def test_faiss_backend_matches_numpy() -> None:
    search = dedup.dedup_backend("faiss")
    assert search is not None
    x = _vectors()
    assert _same(search(x, THRESHOLD), near_duplicate_pairs(x, THRESHOLD))
    empty = search(np.zeros((0, 16), np.float32), THRESHOLD)
    assert empty[0].tolist() == [0] and empty[1].tolist() == []


def test_faiss_backend_without_faiss_names_the_install(no_faiss: None) -> None:
    search = dedup.dedup_backend("faiss")
    assert search is not None
    with pytest.raises(MissingDependencyError, match=r"pip install './semtoken-rag\[faiss\]'"):
        search(_vectors(), THRESHOLD)


def test_auto_below_threshold_uses_numpy(faiss_spy: _Spy) -> None:
    search = dedup.dedup_backend("auto")
    assert search is not None
    x = _vectors()
    assert len(x) < dedup.FAISS_DEDUP_MIN_UNITS
    assert _same(search(x, THRESHOLD), near_duplicate_pairs(x, THRESHOLD))
    assert faiss_spy.calls == []


@needs_faiss
def test_auto_at_threshold_uses_faiss(monkeypatch: pytest.MonkeyPatch, faiss_spy: _Spy) -> None:
    x = _vectors()
    monkeypatch.setattr(dedup, "FAISS_DEDUP_MIN_UNITS", len(x))
    search = dedup.dedup_backend("auto")
    assert search is not None
    assert _same(search(x, THRESHOLD), near_duplicate_pairs(x, THRESHOLD))
    assert faiss_spy.calls == [len(x)]


def test_auto_without_faiss_falls_back_to_numpy(
    monkeypatch: pytest.MonkeyPatch, no_faiss: None
) -> None:
    """The documented fallback: a large context without FAISS gets the exact numpy search
    (this raised ``MissingDependencyError`` when the check caught only import-time errors)."""
    x = _vectors()
    monkeypatch.setattr(dedup, "FAISS_DEDUP_MIN_UNITS", 8)
    assert not dedup.faiss_available()
    search = dedup.dedup_backend("auto")
    assert search is not None
    assert _same(search(x, THRESHOLD), near_duplicate_pairs(x, THRESHOLD))


# -- through the engine ---------------------------------------------------------------------
CHUNKS = [
    "The river rose overnight. The river rose overnight. Bridges closed at dawn.",
    "Crews moved sandbags to the levee. The river rose overnight again. Schools stayed shut.",
    "Officials said the water would fall by Friday. Bridges closed at dawn.",
]


def _compress(backend: str) -> tuple[str, int, int]:
    comp = Compressor(
        SemTokenConfig(dedup_backend=backend, compression_ratio=0.6),
        encoder=FakeEncoder(),
        counter=WhitespaceCounter(),
    )
    res = comp.compress(CHUNKS, "When did the bridges close?")
    return res.joined(), res.kept_tokens, res.dedup_saved_tokens


def test_compressor_hands_the_configured_backend_to_the_core(
    monkeypatch: pytest.MonkeyPatch, faiss_spy: _Spy
) -> None:
    """``dedup_backend`` reaches the core's search: ``auto`` over the (lowered) threshold calls
    the FAISS search with every unit, ``numpy`` never does, and both keep the same text."""
    monkeypatch.setattr(dedup, "FAISS_DEDUP_MIN_UNITS", 1)
    numpy_result = _compress("numpy")
    assert faiss_spy.calls == [] and numpy_result[2] > 0  # a repeated sentence was skipped
    assert _compress("auto") == numpy_result
    assert faiss_spy.calls == [8]  # the eight sentences of CHUNKS


def test_compressor_auto_without_faiss_and_faiss_without_faiss(
    monkeypatch: pytest.MonkeyPatch, no_faiss: None
) -> None:
    monkeypatch.setattr(dedup, "FAISS_DEDUP_MIN_UNITS", 1)
    assert _compress("auto") == _compress("numpy")
    with pytest.raises(MissingDependencyError, match="faiss"):
        _compress("faiss")


# -- the partner cap, both backends --------------------------------------------------------
def _copies(n: int = 100, dim: int = 16) -> np.ndarray:
    """``(n, dim)`` near-identical unit vectors: every pair is a near-duplicate."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal(dim).astype(np.float32)
    return l2_normalize(base + 0.01 * rng.standard_normal((n, dim)).astype(np.float32))


@needs_faiss
def test_faiss_caps_partners_like_numpy() -> None:
    """numpy keeps at most ``MAX_PARTNERS`` partners per unit and FAISS kept them all: past
    ``FAISS_DEDUP_MIN_UNITS`` units the ``auto`` backend changed the compression."""
    from semtoken_rag.core.redundancy import MAX_PARTNERS

    x = _copies()
    got, want = dedup.near_duplicates(x, THRESHOLD), near_duplicate_pairs(x, THRESHOLD)
    assert np.array_equal(got[0], want[0]) and (np.diff(got[0]) == MAX_PARTNERS).all()
    # Which partner is 64th of 99 near-equal ones is float rounding (BLAS vs FAISS, ~1e-6).
    assert (got[1] == want[1]).mean() > 0.95
    # Exact copies tie: both keep the lowest-numbered partners, whatever the float noise.
    same = np.repeat(x[:1], 80, axis=0)
    assert _same(dedup.near_duplicates(same, THRESHOLD), near_duplicate_pairs(same, THRESHOLD))
    # Through the engine: the same text whichever backend searched.
    text = " ".join(
        ["The cat sat on the mat today."] * 100 + [f"Distinct word{i} here{i}." for i in range(10)]
    )
    out = []
    for backend in ("numpy", "faiss"):
        comp = Compressor(
            SemTokenConfig(dedup_backend=backend, lexical_dedup_threshold=None),
            encoder=FakeEncoder(),
            counter=WhitespaceCounter(),
        )
        out.append(comp.compress(text, "cat mat?", ratio=0.5).texts)
    assert out[0] == out[1]


def _record_range_searches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of every FAISS range search from now on, in order."""
    import faiss

    searched: list[int] = []

    class Recording(faiss.IndexFlatIP):  # type: ignore[misc]
        def range_search(self, *args: Any) -> Any:  # type: ignore[override]
            searched.append(len(args[0]))
            return super().range_search(*args)

    monkeypatch.setattr(faiss, "IndexFlatIP", Recording)
    return searched


@needs_faiss
@pytest.mark.parametrize("crowded_from", [0, 150, None])
def test_faiss_search_in_blocks_equals_numpy_with_crowded_rows(
    monkeypatch: pytest.MonkeyPatch, crowded_from: int | None
) -> None:
    """Near-copies (repeated log lines) made the range search return every pair at once:
    8,000 of them took 56 s and 3.4 GB.  It now runs in blocks, and from the first block with
    a row over the partner cap on, numpy ranks the rest: the graph is numpy's either way."""
    searched = _record_range_searches(monkeypatch)
    monkeypatch.setattr(dedup, "_FAISS_BLOCK", 64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    if crowded_from is not None:  # 150 near-copies of one line, more than the cap of 64
        base = rng.standard_normal(16).astype(np.float32)
        x[crowded_from : crowded_from + 150] = base + 0.01 * rng.standard_normal((150, 16))
    x = l2_normalize(x)
    x[:40] = _vectors(10, 4)  # a few small clusters under the cap
    got = dedup.near_duplicates(x, THRESHOLD)
    assert _same(got, near_duplicate_pairs(x, THRESHOLD))
    assert int(np.diff(got[0]).max()) == (64 if crowded_from is not None else 3)
    # Blocks of 64 rows; none searched by FAISS after the first crowded one.
    expected = [64] * 4 + [44] if crowded_from is None else [64] * (crowded_from // 64 + 1)
    assert searched == expected


@needs_faiss
@pytest.mark.parametrize("crowded", [False, True])
def test_faiss_blocks_start_small_and_double(
    monkeypatch: pytest.MonkeyPatch, crowded: bool
) -> None:
    """The first range search held ``2,048 * n`` pairs of a context of near-copies before numpy
    took over (30,000 copies: 2.6 GB peak, now 1.9 GB, numpy's own 1.8 GB): it now starts at a
    few rows and doubles, so near-copies are found crowded after a small search."""
    searched = _record_range_searches(monkeypatch)
    monkeypatch.setattr(dedup, "_FIRST_BLOCK", 8)
    monkeypatch.setattr(dedup, "_FAISS_BLOCK", 64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    if crowded:  # 150 near-copies from the first row on: the cap of 64 is passed at once
        x[:150] = rng.standard_normal(16) + 0.01 * rng.standard_normal((150, 16))
    x = l2_normalize(x.astype(np.float32))
    got = dedup.near_duplicates(x, THRESHOLD)
    assert _same(got, near_duplicate_pairs(x, THRESHOLD))
    assert searched == ([8] if crowded else [8, 16, 32, 64, 64, 64, 52])


def test_crowded_rows_are_ranked_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranking a block's over-connected rows took several ``(rows, n)`` temporaries at once: a
    block of 2,048 near-copies among 30,000 units peaked at 1.8 GB (now 0.5 GB, and 55 s became
    26 s).  They are ranked ``_RANK_ROWS`` at a time, with the same partners."""
    from semtoken_rag.core import redundancy

    rng = np.random.default_rng(7)
    x = rng.standard_normal((60, 16)).astype(np.float32)
    x[:30] = rng.standard_normal(16) + 0.01 * rng.standard_normal((30, 16))  # 30 near-copies
    x = l2_normalize(x.astype(np.float32))
    whole = near_duplicate_pairs(x, THRESHOLD, max_partners=5)
    ranked: list[int] = []
    rank = redundancy._top_partners

    def recording(sim: np.ndarray, k: int) -> np.ndarray:
        ranked.append(len(sim))
        return rank(sim, k)

    monkeypatch.setattr(redundancy, "_top_partners", recording)
    monkeypatch.setattr(redundancy, "_RANK_ROWS", 4)
    got = near_duplicate_pairs(x, THRESHOLD, max_partners=5)
    assert _same(got, whole) and int(np.diff(got[0]).max()) == 5
    assert ranked == [4] * 7 + [2]  # the 30 crowded rows, 4 at a time


@needs_faiss
@pytest.mark.parametrize("crowded_from", [150, 2100])
def test_faiss_resumes_with_numpys_own_products(
    monkeypatch: pytest.MonkeyPatch, crowded_from: int
) -> None:
    """Past a crowded block numpy ranked the rest in the FAISS search's blocks (128:192, ...),
    whose products round differently from numpy's own (0:2048, ...) on some CPUs (1.8e-7 on an
    AVX2 EPYC): partners ranked at 5 decimals differed, and so did the compression.  It now
    resumes at the start of numpy's block, with numpy's own products; the rows before it are
    FAISS's.  Recorded products, so this fails on every CPU, whatever its BLAS rounds."""
    from semtoken_rag.core import redundancy

    products: list[tuple[int, int]] = []
    real = redundancy.block_partners

    def recording(x: np.ndarray, lo: int, hi: int, *args: Any) -> Any:
        products.append((lo, hi))
        return real(x, lo, hi, *args)

    monkeypatch.setattr(redundancy, "block_partners", recording)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2400, 16)).astype(np.float32)
    x[crowded_from : crowded_from + 150] = rng.standard_normal(16) + 0.01 * rng.standard_normal(
        (150, 16)
    )
    x = l2_normalize(x.astype(np.float32))
    got = dedup.near_duplicates(x, THRESHOLD)
    faiss_products, products[:] = list(products), []
    assert _same(got, near_duplicate_pairs(x, THRESHOLD))
    start = crowded_from - crowded_from % 2048
    assert faiss_products == [p for p in products if p[0] >= start] != []
