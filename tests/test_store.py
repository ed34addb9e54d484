"""FingerprintStore: protocol, persistence, LRU, integrity, search, chunking, CLI, real MiniLM."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semtoken_rag.core.redundancy import near_duplicate_pairs
from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import InvalidInputError, StoreError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.store import (
    FingerprintStore,
    SpanIndex,
    StoreWarning,
    chunk_words,
    near_duplicates,
)
from semtoken_rag.store.store import DB_NAME, INDEX_NAME
from tests.fakes import FakeEncoder, WhitespaceCounter

ROOT = Path(__file__).resolve().parents[1]


def _texts(n: int, tag: str = "t") -> list[str]:
    return [
        f"Chunk {tag}{i} tells of item {i * 7} and the river. It ends here {i}." for i in range(n)
    ]


def _items(enc: FakeEncoder, texts: list[str]) -> list[tuple[str, ChunkFingerprints]]:
    return list(
        zip(
            [fingerprint_key(t, enc.cache_id) for t in texts], enc.encode_texts(texts), strict=False
        )
    )


def _same(a: ChunkFingerprints | None, b: ChunkFingerprints) -> bool:
    return (
        a is not None
        and a.vectors.dtype == np.float32
        and a.word_spans.dtype == np.int64
        and a.vectors.tobytes() == b.vectors.tobytes()
        and a.word_spans.tobytes() == b.word_spans.tobytes()
    )


@pytest.fixture(params=["memory", "disk"])
def store(request, tmp_path):
    s = FingerprintStore(None if request.param == "memory" else tmp_path / "s")
    yield s
    s.close()


# -- protocol ------------------------------------------------------------------------------------
def test_roundtrip_hits_misses(store):
    enc = FakeEncoder()
    items = _items(enc, _texts(20))
    assert store.get_many([]) == []
    assert store.get_many([k for k, _ in items]) == [None] * 20
    store.put_many(items)
    store.put_many(items[:5])  # already present: content-addressed, no change
    keys = [k for k, _ in items]
    got = store.get_many([*keys, keys[0], "absent"])
    assert all(_same(g, fp) for g, (_, fp) in zip(got, items, strict=False))
    assert _same(got[20], items[0][1]) and got[21] is None
    st_ = store.stats()
    assert (st_.hits, st_.misses, st_.entries) == (21, 21, 20)
    assert st_.vectors == sum(fp.n_words for _, fp in items)
    assert st_.payload_bytes == sum(fp.nbytes for _, fp in items)
    assert len(store) == 20 and store.verify() == []


def test_empty_chunk_and_reopen_byte_identical(tmp_path):
    enc = FakeEncoder()
    items = _items(enc, [*_texts(5), "", "   "])
    with FingerprintStore(tmp_path) as s:
        s.put_many(items)
    with FingerprintStore(tmp_path) as s:
        got = s.get_many([k for k, _ in items])
        assert all(_same(g, fp) for g, (_, fp) in zip(got, items, strict=False))
        assert got[5].n_words == 0


def test_threads_share_one_store(tmp_path):
    enc = FakeEncoder()
    items = _items(enc, _texts(200))
    errors: list[BaseException] = []
    with FingerprintStore(tmp_path) as s:

        def work(lo: int) -> None:
            try:
                for i in range(lo, lo + 100, 10):
                    s.put_many(items[i : i + 10])
                    assert all(g is not None for g in s.get_many([k for k, _ in items[i : i + 10]]))
            except BaseException as exc:  # collected and asserted in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(lo,)) for lo in (0, 50, 100, 50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert s.stats().entries == 200 and s.verify() == []


# -- LRU, versions, integrity ------------------------------------------------------------------
@pytest.mark.parametrize("where", ["memory", "disk"])
def test_lru_eviction_under_max_bytes(tmp_path, where):
    enc = FakeEncoder()
    items = _items(enc, _texts(4))
    size = max(fp.nbytes for _, fp in items)
    path = None if where == "memory" else tmp_path
    with FingerprintStore(path, max_bytes=3 * size, touch_interval=0.0) as s:
        s.put_many(items[:3])
        assert s.get_many([items[0][0]])[0] is not None  # a becomes most recently used
        s.put_many(items[3:])
        present = [g is not None for g in s.get_many([k for k, _ in items])]
        assert present == [True, False, True, True]
        assert s.stats().payload_bytes <= 3 * size and s.verify() == []


def test_format_version_mismatch_is_a_store_error(tmp_path):
    FingerprintStore(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = 999 WHERE name = 'format_version'")
    with pytest.raises(StoreError, match="format version 999"):
        FingerprintStore(tmp_path)


def test_checksum_mismatch_is_a_miss_and_removed(tmp_path):
    enc = FakeEncoder()
    items = _items(enc, _texts(3))
    with FingerprintStore(tmp_path) as s:
        s.put_many(items)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        vec = bytearray(
            conn.execute("SELECT vectors FROM entries WHERE key=?", (items[1][0],)).fetchone()[0]
        )
        vec[5] ^= 0xFF
        conn.execute("UPDATE entries SET vectors=? WHERE key=?", (bytes(vec), items[1][0]))
    with FingerprintStore(tmp_path) as s:
        with pytest.warns(StoreWarning, match="checksum"):
            got = s.get_many([k for k, _ in items])
        assert got[1] is None and _same(got[0], items[0][1]) and _same(got[2], items[2][1])
        assert s.stats().entries == 2 and s.verify() == []
        s.put_many(items[1:2])  # recomputed value goes back in
        assert _same(s.get_many([items[1][0]])[0], items[1][1])


def test_bad_arguments():
    with pytest.raises(StoreError):
        FingerprintStore(use_gpu="sometimes")
    with pytest.raises(StoreError):
        FingerprintStore(max_bytes=0)
    s = FingerprintStore()
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get_many(["x"])


def test_import_does_not_load_faiss():
    code = "import semtoken_rag, sys; assert 'faiss' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- search index ---------------------------------------------------------------------------
def test_search_index_persisted_and_refreshed(tmp_path):
    enc = FakeEncoder()
    items = _items(enc, _texts(30))
    with FingerprintStore(tmp_path) as s:
        s.put_many(items[:20])
        scores, hits = s.search(items[3][1].vectors[2], k=1)
        assert hits[0][0] == (items[3][0], 2) and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert (tmp_path / INDEX_NAME).is_file()
    with FingerprintStore(tmp_path) as s:
        s.search(items[0][1].vectors[:1], k=1)
        assert s._index_file_token == s._index.token  # reused, not rebuilt
        with FingerprintStore(tmp_path) as other:  # another writer makes the index stale
            other.put_many(items[20:])
        _, hits = s.search(items[25][1].vectors[1], k=1)
        assert hits[0][0] == (items[25][0], 1)
        assert s._index.ntotal == s.stats().vectors


def test_search_after_eviction_rebuilds(tmp_path):
    enc = FakeEncoder()
    items = _items(enc, _texts(6))
    size = max(fp.nbytes for _, fp in items)
    with FingerprintStore(tmp_path, max_bytes=3 * size) as s:
        s.put_many(items[:3])
        s.search(items[0][1].vectors[0], k=1)
        s.put_many(items[3:])
        _, hits = s.search(items[0][1].vectors[0], k=3)
        assert all(h is None or h[0] != items[0][0] for h in hits[0])
        assert s._index.ntotal == s.stats().vectors


# -- redundancy helper ---------------------------------------------------------------------
def test_near_duplicates_matches_core():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 24)).astype(np.float32)
    x = np.concatenate([x, x[:80] + 0.1 * rng.standard_normal((80, 24)).astype(np.float32)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for thr in (0.5, 0.9):
        sims = x @ x.T
        if np.any(np.abs(sims - thr) < 1e-4):
            continue
        a, b = near_duplicates(x, thr), near_duplicate_pairs(x, thr)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    ip, ix = near_duplicates(np.zeros((0, 8), np.float32), 0.9)
    assert ip.tolist() == [0] and ix.size == 0


def test_span_index_nearest():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx = SpanIndex(16)
    assert idx.is_redundant(x[:2], 0.9).tolist() == [False, False]
    idx.add(x[:5])
    sims, ids = idx.nearest(x[:7])
    assert ids[:5].tolist() == list(range(5)) and np.allclose(sims[:5], 1.0, atol=1e-5)
    assert idx.is_redundant(x[:7], 0.99).tolist() == [True] * 5 + [False] * 2


# -- chunking ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text("abc xyz.,\n", min_size=1, max_size=8), max_size=60).map(" ".join),
    st.integers(1, 12),
    st.integers(0, 11),
)
def test_chunk_words_properties(text, size, overlap):
    overlap = min(overlap, size - 1)
    chunks = chunk_words(text, size, overlap)
    words = [text[a:b] for a, b in find_words(text).tolist()]
    assert bool(chunks) == bool(words)
    covered: list[str] = []
    for i, c in enumerate(chunks):
        assert c in text
        cw = [c[a:b] for a, b in find_words(c).tolist()]
        assert 1 <= len(cw) <= size
        covered.extend(cw if i == 0 else cw[overlap:])
    assert covered == words


def test_chunk_words_rejects_bad_sizes():
    with pytest.raises(InvalidInputError):
        chunk_words("a b", 0)
    with pytest.raises(InvalidInputError):
        chunk_words("a b", 3, 3)


# -- engine integration (fake encoder) ------------------------------------------------------
def test_compressor_with_store_warm_encodes_nothing(tmp_path):
    from semtoken_rag import Compressor, SemTokenConfig

    texts = _texts(12)
    cfg = SemTokenConfig(compression_ratio=0.5)
    enc = FakeEncoder()
    with FingerprintStore(tmp_path) as s:
        assert s.add_texts(texts[:8], enc, batch_size=3, progress=False) == 8
        assert s.add_texts(texts, Compressor(cfg, encoder=enc), progress=False) == 4
        assert enc.calls == 12
    enc2 = FakeEncoder()
    with FingerprintStore(tmp_path) as s:
        comp = Compressor(cfg, encoder=enc2, store=s, counter=WhitespaceCounter())
        warm = comp.compress(texts, "river item")
        assert enc2.calls == 0 and warm.encoder_calls == 0
    cold = Compressor(cfg, encoder=FakeEncoder(), counter=WhitespaceCounter()).compress(
        texts, "river item"
    )
    assert [c.text for c in warm.chunks] == [c.text for c in cold.chunks]


# -- real MiniLM + FAISS --------------------------------------------------------------------
@pytest.mark.slow
def test_cold_vs_warm_narrativeqa_real_minilm(tmp_path, narrativeqa, real_compressor):
    from semtoken_rag import Compressor, SemTokenConfig

    enc = real_compressor.encoder
    contexts = [(chunk_words(r["context"], 120, 20), r["question"]) for r in narrativeqa]
    n_chunks = len({c for chunks, _ in contexts for c in chunks})
    with FingerprintStore(tmp_path) as s:
        comp = Compressor(SemTokenConfig(), encoder=enc, store=s)
        before = enc.calls
        cold = comp.compress_many(contexts)  # one batched pass over chunks and queries
        assert enc.calls - before == n_chunks
    with FingerprintStore(tmp_path) as s:
        comp = Compressor(SemTokenConfig(), encoder=enc, store=s)
        before = enc.calls
        warm = comp.compress_many(contexts)
        assert enc.calls == before  # zero chunk encodings when warm
        assert s.stats().misses == 0 and s.verify() == []
    for a, b in zip(cold, warm, strict=False):
        assert [c.text.encode() for c in a.chunks] == [c.text.encode() for c in b.chunks]
        assert [c.offsets for c in a.chunks] == [c.offsets for c in b.chunks]


@pytest.mark.slow
def test_cli_ingest_and_info(tmp_path, narrativeqa, real_compressor, capsys):
    import json

    from semtoken_rag.cli import ingest
    from semtoken_rag.cli import store as store_cli
    from semtoken_rag.cli.main import build_parser

    doc = tmp_path / "a.md"
    doc.write_text(narrativeqa[0]["context"], encoding="utf-8")
    jl = tmp_path / "b.jsonl"
    jl.write_text(
        "\n".join(json.dumps({"body": r["context"][:400]}) for r in narrativeqa[1:4]),
        encoding="utf-8",
    )
    argv = [
        "ingest",
        str(doc),
        str(jl),
        "--store",
        str(tmp_path / "st"),
        "--chunk-size",
        "80",
        "--text-field",
        "body",
        "--no-progress",
    ]
    args = build_parser(argv).parse_args(argv)
    # jsonl re-chunked because --chunk-size was given
    expected = chunk_words(narrativeqa[0]["context"], 80, 32)
    for r in narrativeqa[1:4]:
        expected += chunk_words(r["context"][:400], 80, 32)
    assert ingest.run(args) == 0
    with FingerprintStore(tmp_path / "st") as s:
        keys = [fingerprint_key(t, real_compressor.encoder.cache_id) for t in expected]
        assert all(g is not None for g in s.get_many(keys))
    argv = ["store", "info", str(tmp_path / "st"), "--check", "--json"]
    assert store_cli.run(build_parser(argv).parse_args(argv)) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["entries"] == len(set(expected)) and info["problems"] == []
    with pytest.raises(StoreError, match="no fingerprint store"):
        store_cli.run(
            build_parser(["store", "info", str(tmp_path)]).parse_args(
                ["store", "info", str(tmp_path)]
            )
        )


def test_no_warnings_on_clean_open(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        FingerprintStore(tmp_path).close()
        FingerprintStore(tmp_path).close()
