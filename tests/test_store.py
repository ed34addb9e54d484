"""FingerprintStore: protocol, codecs, persistence, LRU, integrity, search, chunking, CLI."""

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
from semtoken_rag.store.store import DB_NAME
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.store_helpers import SMALL_PQ, close_enough, items, same_exactly, texts

ROOT = Path(__file__).resolve().parents[1]

#: Codec -> lowest mean cosine of a stored chunk to its original (fake 32-dim vectors).
FLOORS = {"float32": 1.0 - 1e-6, "float16": 0.9999, "pq64": 0.8}


@pytest.fixture(params=[("memory", "float32"), ("disk", "float32"), ("disk", "pq64")])
def store(request, tmp_path):
    where, codec = request.param
    s = FingerprintStore(
        None if where == "memory" else tmp_path / "s",
        codec=SMALL_PQ if codec == "pq64" else codec,
    )
    yield s
    s.close()


# -- protocol ------------------------------------------------------------------------------------
def test_roundtrip_hits_misses(store):
    enc = FakeEncoder()
    its = items(enc, texts(200))  # 2,800 vectors: the small PQ trains on the way
    keys = [k for k, _ in its]
    assert store.get_many([]) == []
    assert store.get_many(keys[:20]) == [None] * 20
    for lo in range(0, 200, 50):
        store.put_many(its[lo : lo + 50])
    store.put_many(its[:5])  # already present: content-addressed, no change
    got = store.get_many([*keys, keys[0], "absent"])
    floor = FLOORS[store.codec.name]
    assert all(close_enough(g, fp, floor) for g, (_, fp) in zip(got, its, strict=False))
    if store.codec.name == "float32":
        assert all(same_exactly(g, fp) for g, (_, fp) in zip(got, its, strict=False))
    assert got[200] is got[0] and got[201] is None
    st_ = store.stats()
    assert (st_.hits, st_.misses, st_.entries) == (201, 21, 200)
    assert st_.vectors == sum(fp.n_words for _, fp in its)
    assert st_.trained and st_.staged_entries == 0 and st_.codec == store.codec.name
    assert len(store) == 200 and store.verify() == []
    if store.path is not None:  # the ~16 float16 staging pages went back to the file system
        free = store._live().execute("PRAGMA freelist_count").fetchone()[0]
        assert free <= 6, free


def test_default_codec_is_pq64_and_reopen_keeps_it(tmp_path):
    enc = FakeEncoder()
    its = items(enc, [*texts(5), "", "   "])
    with FingerprintStore(tmp_path) as s:
        assert s.codec.name == "pq64"
        s.put_many(its)
        assert not s.stats().trained and s.stats().staged_entries == 7  # float16 until trained
    with FingerprintStore(tmp_path) as s:
        got = s.get_many([k for k, _ in its])
        assert all(close_enough(g, fp, 0.9999) for g, (_, fp) in zip(got, its, strict=False))
        assert got[5].n_words == 0 and got[5].vectors.shape == (0, 32)
    with pytest.raises(StoreError, match=r"uses codec 'pq64'.*migrate"):
        FingerprintStore(tmp_path, codec="sq8")
    FingerprintStore(tmp_path, codec="pq64").close()  # same codec by name: fine


def test_threads_share_one_store(tmp_path):
    enc = FakeEncoder()
    its = items(enc, texts(200))
    errors: list[BaseException] = []
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:

        def work(lo: int) -> None:
            try:
                for i in range(lo, lo + 100, 10):
                    s.put_many(its[i : i + 10])
                    assert all(g is not None for g in s.get_many([k for k, _ in its[i : i + 10]]))
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
    its = items(enc, texts(4))
    with FingerprintStore(codec="float16") as probe:
        probe.put_many(its[:1])
        size = probe.stats().payload_bytes  # every item has the same shape
    path = None if where == "memory" else tmp_path
    with FingerprintStore(path, codec="float16", max_bytes=3 * size, touch_interval=0.0) as s:
        s.put_many(its[:3])
        assert s.get_many([its[0][0]])[0] is not None  # a becomes most recently used
        s.put_many(its[3:])
        present = [g is not None for g in s.get_many([k for k, _ in its])]
        assert present == [True, False, True, True]
        assert s.stats().payload_bytes <= 3 * size and s.verify() == []


def test_lru_refreshes_are_buffered_and_survive_reopen(tmp_path):
    enc = FakeEncoder()
    its = items(enc, texts(4))
    with FingerprintStore(tmp_path, codec="float16", touch_interval=0.0) as s:
        s.put_many(its[:3])
        s.get_many([its[0][0]])  # buffered, written at close
    with FingerprintStore(codec="float16") as probe:
        probe.put_many(its[:1])
        size = probe.stats().payload_bytes
    with FingerprintStore(tmp_path, max_bytes=3 * size) as s:
        s.put_many(its[3:])
        present = [g is not None for g in s.get_many([k for k, _ in its])]
        assert present == [True, False, True, True]


def test_format_versions_and_codecs_are_typed_errors(tmp_path):
    FingerprintStore(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = 999 WHERE name = 'format_version'")
    with pytest.raises(StoreError, match="format 999, written by a newer semtoken-rag"):
        FingerprintStore(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = 2 WHERE name = 'format_version'")
        conn.execute("UPDATE meta SET value = 'rq32' WHERE name = 'codec'")
    with pytest.raises(StoreError, match="codec 'rq32', unknown to this semtoken-rag"):
        FingerprintStore(tmp_path)
    with pytest.raises(StoreError, match="unknown fingerprint codec 'nope'"):
        FingerprintStore(codec="nope")
    assert not list(tmp_path.glob("quarantine-*"))  # not damage: nothing moved


def test_checksum_mismatch_is_a_miss_and_removed(tmp_path):
    enc = FakeEncoder()
    its = items(enc, texts(3))
    with FingerprintStore(tmp_path, codec="float32") as s:
        s.put_many(its)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        vec = bytearray(
            conn.execute("SELECT vectors FROM entries WHERE key=?", (its[1][0],)).fetchone()[0]
        )
        vec[5] ^= 0xFF
        conn.execute("UPDATE entries SET vectors=? WHERE key=?", (bytes(vec), its[1][0]))
    with FingerprintStore(tmp_path) as s:
        with pytest.warns(StoreWarning, match="checksum"):
            got = s.get_many([k for k, _ in its])
        assert (
            got[1] is None and same_exactly(got[0], its[0][1]) and same_exactly(got[2], its[2][1])
        )
        assert s.stats().entries == 2 and s.verify() == []
        s.put_many(its[1:2])  # recomputed value goes back in
        assert same_exactly(s.get_many([its[1][0]])[0], its[1][1])


def test_row_moved_to_another_codebook_is_damage(tmp_path):
    """A row's checksum binds its codebook: pointing it at another one is detected."""
    enc = FakeEncoder()
    its = items(enc, texts(200))
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        s.put_many(its)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        staging = conn.execute("SELECT id FROM codebooks WHERE codec='float16'").fetchone()[0]
        conn.execute("UPDATE entries SET codebook=? WHERE key=?", (staging, its[0][0]))
    with FingerprintStore(tmp_path) as s, pytest.warns(StoreWarning, match="checksum"):
        assert s.get_many([its[0][0]]) == [None]


def test_bad_arguments():
    with pytest.raises(StoreError):
        FingerprintStore(use_gpu="sometimes")
    with pytest.raises(StoreError):
        FingerprintStore(max_bytes=0)
    with pytest.raises(StoreError, match="read_only needs a store directory"):
        FingerprintStore(read_only=True)
    s = FingerprintStore()
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get_many(["x"])
    with pytest.raises(StoreError, match="k must be at least 1"):
        FingerprintStore().search(np.ones(4, np.float32), k=0)


def test_import_does_not_load_faiss():
    code = (
        "import semtoken_rag, semtoken_rag.store, sys; "
        "s = semtoken_rag.store.FingerprintStore(codec='float16'); "
        "assert 'faiss' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- search index ---------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["float32", "pq64"])
def test_search_over_stored_codes_follows_writers(tmp_path, codec):
    enc = FakeEncoder()
    its = items(enc, texts(120))
    spec = SMALL_PQ if codec == "pq64" else codec
    with FingerprintStore(tmp_path, codec=spec, use_gpu="never") as s:
        s.put_many(its[:100])
        assert s.stats().bytes_in_memory == 0  # nothing built before the first search
        stored = s.get_many([its[3][0]])[0]
        scores, hits = s.search(stored.vectors[2], k=1)
        assert hits[0][0] == (its[3][0], 2) and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
        stats = s.stats()
        assert 0 < stats.bytes_in_memory <= stats.payload_bytes  # the stored codes, no copy
        with FingerprintStore(tmp_path) as other:  # another writer: picked up incrementally
            other.put_many(its[100:])
        fresh = s.get_many([its[110][0]])[0]
        _, hits = s.search(fresh.vectors[1], k=1)
        assert hits[0][0] == (its[110][0], 1)
        assert s._index.ntotal == s.stats().vectors
        scores, hits = s.search(fresh.vectors[:2], k=s.stats().vectors + 5)
        assert hits[0][-1] is None and np.isneginf(scores[0, -1])  # fewer than k: padded
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [DB_NAME]


def test_search_matches_brute_force_on_decoded_vectors(tmp_path):
    enc = FakeEncoder()
    its = items(enc, texts(150))
    with FingerprintStore(tmp_path, codec=SMALL_PQ, use_gpu="never") as s:
        s.put_many(its)
        got = s.get_many([k for k, _ in its])
        flat = np.concatenate([g.vectors for g in got])
        owners = [(k, w) for (k, _), g in zip(its, got, strict=True) for w in range(g.n_words)]
        q = flat[::97]
        scores, hits = s.search(q, k=5)
        ref = np.sort(q @ flat.T, axis=1)[:, ::-1][:, :5]
        np.testing.assert_allclose(scores, ref, atol=1e-5)
        for qi, row in enumerate(hits):
            for sc, h in zip(scores[qi], row, strict=True):
                assert float(q[qi] @ flat[owners.index(h)]) == pytest.approx(float(sc), abs=1e-5)


def test_search_after_eviction_rebuilds(tmp_path):
    enc = FakeEncoder()
    its = items(enc, texts(6))
    with FingerprintStore(codec="float32") as probe:
        probe.put_many(its[:1])
        size = probe.stats().payload_bytes
    with FingerprintStore(tmp_path, codec="float32", max_bytes=3 * size) as s:
        s.put_many(its[:3])
        s.search(its[0][1].vectors[0], k=1)
        s.put_many(its[3:])
        _, hits = s.search(its[0][1].vectors[0], k=3)
        assert all(h is None or h[0] != its[0][0] for h in hits[0])
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
    idx.add(x[5:])  # incremental: ids continue
    assert idx.nearest(x[8:9])[1].tolist() == [8]


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

    chunk_texts = texts(12)
    cfg = SemTokenConfig(compression_ratio=0.5)
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec="float32") as s:
        assert s.add_texts(chunk_texts[:8], enc, batch_size=3, progress=False) == 8
        assert s.add_texts(chunk_texts, Compressor(cfg, encoder=enc), progress=False) == 4
        assert enc.calls == 12
    enc2 = FakeEncoder()
    with FingerprintStore(tmp_path) as s:
        comp = Compressor(cfg, encoder=enc2, store=s, counter=WhitespaceCounter())
        warm = comp.compress(chunk_texts, "river item")
        assert enc2.calls == 0 and warm.encoder_calls == 0
    cold = Compressor(cfg, encoder=FakeEncoder(), counter=WhitespaceCounter()).compress(
        chunk_texts, "river item"
    )
    assert [c.text for c in warm.chunks] == [c.text for c in cold.chunks]


# -- real MiniLM + FAISS --------------------------------------------------------------------
@pytest.mark.slow
def test_cold_vs_warm_narrativeqa_real_minilm(tmp_path, narrativeqa, real_compressor):
    from semtoken_rag import Compressor, SemTokenConfig

    enc = real_compressor.encoder
    contexts = [(chunk_words(r["context"], 120, 20), r["question"]) for r in narrativeqa]
    n_chunks = len({c for chunks, _ in contexts for c in chunks})
    with FingerprintStore(tmp_path, codec="float32") as s:
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
def test_default_codec_on_real_minilm_trains_and_decodes_faithfully(
    tmp_path, shared_data, real_compressor
):
    """The default codec with its real settings: trained at first ingestion once 16,384 word
    vectors exist, staged entries re-encoded, fidelity as measured in docs/store.md.  The corpus
    is the benchmark's training corpus (the essays), cut into 120-word chunks, about 18k words."""
    from semtoken_lab.bench.store import training_chunks

    enc = real_compressor.encoder
    chunks = training_chunks(shared_data)[:180]
    fps = enc.encode_texts(chunks)
    its = [(fingerprint_key(t, enc.cache_id), fp) for t, fp in zip(chunks, fps, strict=True)]
    assert sum(fp.n_words for fp in fps) > 16384
    with FingerprintStore(tmp_path) as s:
        for lo in range(0, len(its), 64):
            s.put_many(its[lo : lo + 64], encoder_id=enc.cache_id)
        stats = s.stats()
        assert stats.trained and stats.staged_entries == 0 and s.verify() == []
        got = s.get_many([k for k, _ in its])
        cos = np.concatenate([np.sum(g.vectors * fp.vectors, axis=1) for g, fp in zip(got, fps)])
        assert cos.mean() > 0.85 and all(
            np.array_equal(g.word_spans, fp.word_spans) for g, fp in zip(got, fps, strict=True)
        )
        book = s._books.books()
        assert any(b.codec == "pq64" and b.encoder == enc.cache_id for b in book)
        assert stats.payload_bytes / stats.vectors < 70  # 64 B codes + ~2 B spans per word


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
        "--codec",
        "sq8",
        "--no-progress",
    ]
    args = build_parser(argv).parse_args(argv)
    # jsonl re-chunked because --chunk-size was given
    expected = chunk_words(narrativeqa[0]["context"], 80, 32)
    for r in narrativeqa[1:4]:
        expected += chunk_words(r["context"][:400], 80, 32)
    assert ingest.run(args) == 0
    assert f"{len(expected)} chunks" in capsys.readouterr().out  # the summary line, not JSON
    with FingerprintStore(tmp_path / "st") as s:
        assert s.codec.name == "sq8"
        keys = [fingerprint_key(t, real_compressor.encoder.cache_id) for t in expected]
        assert all(g is not None for g in s.get_many(keys))
    argv = ["store", "info", str(tmp_path / "st"), "--check", "--json"]
    assert store_cli.run(build_parser(argv).parse_args(argv)) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == len(set(expected)) and info["problems"] == []
    assert info["codec"] == "sq8"
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


def test_store_protocol_satisfied():
    from semtoken_rag.protocols import FingerprintStoreProtocol

    store: FingerprintStoreProtocol = FingerprintStore()
    store.put_many([("k", ChunkFingerprints(np.zeros((0, 4), np.float32), np.zeros((0, 2), int)))])
    assert store.get_many(["k"])[0].n_words == 0
