"""Codec registry, every codec through a store, deterministic and seeded training."""

from __future__ import annotations

import numpy as np
import pytest

from semtoken_rag.errors import StoreError
from semtoken_rag.store import CODECS, DEFAULT_CODEC, CodecSpec, FingerprintStore, get_codec
from semtoken_rag.store.codebooks import Codebook, DamagedCodebook, runtime_codec
from semtoken_rag.store.codecs import train, training_sample
from tests.fakes import FakeEncoder
from tests.store_helpers import (
    SMALL_PQ,
    close_enough,
    expected_slice,
    fill,
    long_texts,
    sql,
    words_slice,
)


# -- registry --------------------------------------------------------------------------------
def test_registry_names_and_factories():
    assert set(CODECS) == {"float32", "float16", "sq8", "sq4", "pq96", "pq64", "pq48", "pq128x4"}
    assert DEFAULT_CODEC == "pq64" and get_codec(None).name == DEFAULT_CODEC
    assert get_codec("pq64").factory(384) == "PQ64x8np"  # np: no polysemous training
    assert get_codec("pq64").factory(32) == "PQ4x8np"  # same sub-quantizers per dimension
    assert get_codec("pq96").factory(384) == "PQ96x8np"
    assert get_codec("pq48").factory(384) == "PQ48x8np"
    assert get_codec("pq128x4").factory(384) == "PQ128x4np"
    assert get_codec("sq8").factory(384) == "SQ8" and get_codec("sq4").factory(7) == "SQ4"
    assert get_codec("float16").factory(7) == "<f2" and get_codec("float32").factory(7) == "<f4"
    assert not get_codec("float32").trained and get_codec("sq8").trained
    assert get_codec(SMALL_PQ) is SMALL_PQ
    with pytest.raises(StoreError, match="unknown fingerprint codec 'zip'"):
        get_codec("zip")
    with pytest.raises(StoreError, match="unknown codec kind"):
        CodecSpec("x", "rq")


def test_codec_specs_roundtrip_and_compare():
    spec = SMALL_PQ
    assert CodecSpec.from_json(spec.to_json()) == spec
    assert spec.same_codec(get_codec("pq64")) and not spec.same_codec(get_codec("pq48"))
    assert not get_codec("pq128x4").same_codec(get_codec("pq64").with_options(name="pq128x4"))
    with pytest.raises(StoreError, match="unreadable codec description"):
        CodecSpec.from_json('{"name": 1, "bogus": 2}')
    with pytest.raises(StoreError, match="unreadable codec description"):
        CodecSpec.from_json("not json")
    with pytest.raises(StoreError, match="train_min"):
        SMALL_PQ.with_options(train_min=255)  # below one point per k-means centroid
    get_codec("pq128x4").with_options(train_min=16)  # 4-bit PQ: 16 centroids
    with pytest.raises(StoreError, match="train_max < train_min"):
        SMALL_PQ.with_options(train_max=1000)


# -- every codec through a store ----------------------------------------------------------------
#: Codec -> lowest mean cosine of a served chunk to the document's vectors (fake 32-dim vectors).
FLOORS = {"float32": 0.99999, "float16": 0.9999, "sq8": 0.999, "sq4": 0.95}


@pytest.mark.parametrize("name", sorted(CODECS))
def test_every_codec_roundtrips_through_a_store(tmp_path, name):
    spec = get_codec(name)
    if spec.trained:
        spec = spec.with_options(train_min=1024)
    enc = FakeEncoder()
    docs = long_texts(40, words=60)  # 2,400 words of 32 dims
    refs = enc.encode_texts(docs)
    with FingerprintStore(tmp_path, codec=spec) as s:
        report = fill(s, enc, docs, batch_size=10)
        assert report.trained == spec.trained
        st = s.stats()
        assert st.trained and st.codec == name and st.staged_words == 0 and s.verify() == []
    with FingerprintStore(tmp_path) as s:  # reopened with its own codec
        assert s.codec.name == name
        chunks = [words_slice(d, 10, 55) for d in docs]
        got = s.lookup(chunks, enc.cache_id)
    floor = FLOORS.get(name, 0.6)
    for g, r, c in zip(got, refs, chunks, strict=True):
        assert close_enough(g, expected_slice(r, 10, c), floor), name


def test_code_sizes_follow_the_registry(tmp_path):
    """Payload per word (codes, plus the packed words every codec stores alike) shrinks from
    float32 to float16, sq8, sq4 and the product quantizers."""
    enc = FakeEncoder()
    docs = long_texts(40, words=60)
    per_word = {}
    for name in ("float32", "float16", "sq8", "sq4", "pq64"):
        spec = get_codec(name)
        spec = spec.with_options(train_min=1024) if spec.trained else spec
        with FingerprintStore(codec=spec) as s:
            fill(s, enc, docs)
            per_word[name] = s.stats().payload_bytes / s.stats().words
    words = per_word["float32"] - 128  # the packed words' share (the same for every codec)
    assert 0 < words < 8
    for name, code in (("float16", 64), ("sq8", 32), ("sq4", 16), ("pq64", 4)):
        assert per_word[name] == pytest.approx(code + words, abs=0.5), name


# -- training -------------------------------------------------------------------------------------
def _unit_rows(seed: int, n: int, dim: int = 32) -> np.ndarray:
    """``(n, dim) float32`` random unit rows."""
    sample = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return sample / np.linalg.norm(sample, axis=1, keepdims=True)


def test_training_is_deterministic_and_seeded():
    sample = _unit_rows(3, 1100)
    a = train(SMALL_PQ, sample)
    b = train(SMALL_PQ, sample)
    assert a == b  # same factory, state bytes and training cosine
    c = train(SMALL_PQ.with_options(seed=1), sample)
    assert c[1] != a[1]
    factory, state, cos = a
    assert factory == "PQ4x8np" and 0.3 < cos < 1.0
    book = Codebook(1, "pq64", 32, factory, state, Codebook.digest("pq64", 32, factory, state), cos)
    codec = runtime_codec(book)
    dec = codec.decode(codec.encode(sample[:10]))
    assert dec.dtype == np.float32 and np.allclose(np.linalg.norm(dec, axis=1), 1, atol=1e-5)
    other = c[1]  # a state never loaded in this process (codecs are cached by digest)
    digest = Codebook.digest("pq64", 32, factory, other)
    with pytest.raises(DamagedCodebook, match="digest"):
        runtime_codec(Codebook(2, "pq64", 32, factory, other[:-1], digest, cos))
    with pytest.raises(StoreError, match="needs 1024 vectors"):
        train(SMALL_PQ, sample[:100])


def test_training_is_faiss_kmeans_of_the_documented_iterations():
    """The codebook is FAISS's own PQ training, seeded, with KMEANS_ITERATIONS (10, not
    FAISS's 25: docs/store.md, "Training"): the same index trained by FAISS directly with those
    settings serialises to the same bytes, and 25 iterations to other ones."""
    import faiss

    from semtoken_rag.store.codecs import KMEANS_ITERATIONS

    sample = _unit_rows(4, 4096)  # 16 points per centroid: k-means still moves at 10
    factory, state, _ = train(SMALL_PQ, sample)

    def by_faiss(niter: int) -> bytes:
        index = faiss.index_factory(32, factory, faiss.METRIC_INNER_PRODUCT)
        index.pq.cp.seed, index.pq.cp.niter = SMALL_PQ.seed, niter
        index.train(sample)
        return bytes(faiss.serialize_index(index).tobytes())

    assert KMEANS_ITERATIONS == 10
    assert state == by_faiss(KMEANS_ITERATIONS)
    assert state != by_faiss(25)


def test_training_sample_is_documented_and_seeded():
    x = np.arange(5000 * 4, dtype=np.float32).reshape(5000, 4)
    small = SMALL_PQ.with_options(train_max=1500)
    assert training_sample(x[:1500], small).shape == (1500, 4)  # every vector
    s1, s2 = training_sample(x, small), training_sample(x, small)
    assert s1.shape == (1500, 4) and np.array_equal(s1, s2)
    rows = s1[:, 0].astype(int) // 4
    assert np.all(np.diff(rows) > 0)  # a subset, in insertion order
    other = training_sample(x, small.with_options(seed=5))
    assert not np.array_equal(other, s1)


def test_two_stores_fed_alike_train_identical_codebooks(tmp_path):
    enc = FakeEncoder()
    docs = long_texts(40, words=60)
    rows = []
    for name in ("a", "b"):
        with FingerprintStore(tmp_path / name, codec=SMALL_PQ) as s:
            for lo in range(0, 40, 7):  # the codec trains inside one of these writes
                s.put(docs[lo : lo + 7], enc.encode_texts(docs[lo : lo + 7]), enc.cache_id)
            assert s.stats().trained
        rows.append(
            sql(
                tmp_path / name,
                "SELECT sha256, state, encoder, train_vectors FROM codebooks WHERE codec='pq64'",
            )
        )
    assert len(rows[0]) == 1 and rows[0] == rows[1]
    assert rows[0][0][2] == enc.cache_id and rows[0][0][3] >= 1024
    # and the stored blocks are identical too
    blocks = [
        sql(tmp_path / n, "SELECT id, codebook, checksum FROM blocks ORDER BY id") for n in "ab"
    ]
    assert blocks[0] == blocks[1] and len(blocks[0]) == 40
