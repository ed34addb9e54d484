"""Codec registry, compact spans, deterministic training, migration through the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semtoken_rag.errors import StoreError
from semtoken_rag.store import CODECS, DEFAULT_CODEC, FingerprintStore, get_codec, migrate
from semtoken_rag.store.codecs import Codebook, CodecSpec, build_codec, train, training_rows
from semtoken_rag.store.spans import decode_spans, encode_spans
from semtoken_rag.store.store import DB_NAME
from tests.fakes import FakeEncoder
from tests.store_helpers import ROOT, SMALL_PQ, close_enough, items, texts, write_v1_store


# -- spans ------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)), max_size=60))
def test_spans_roundtrip_any_offsets(pairs):
    spans = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    assert np.array_equal(decode_spans(encode_spans(spans), len(spans)), spans)


def test_spans_of_real_words_take_about_two_bytes_per_word():
    from semtoken_rag.core.segment import find_words

    text = " ".join(texts(40))
    spans = find_words(text)
    data = encode_spans(spans)
    assert len(data) == 1 + 2 * len(spans)  # uint8 deltas
    assert np.array_equal(decode_spans(data, len(spans)), spans)
    with pytest.raises(ValueError):
        decode_spans(data[:-1], len(spans))
    with pytest.raises(ValueError):
        decode_spans(bytes([9]) + data[1:], len(spans))


# -- registry --------------------------------------------------------------------------------
def test_registry_names_and_factories():
    assert DEFAULT_CODEC == "pq64" and DEFAULT_CODEC in CODECS
    assert get_codec(None).name == DEFAULT_CODEC
    assert get_codec("pq64").factory(384) == "PQ64x8np"  # np: no polysemous training
    assert get_codec("pq64").factory(32) == "PQ4x8np"  # same sub-quantizers per dimension
    assert get_codec("pq128x4").factory(384) == "PQ128x4np"
    assert get_codec("pca192-sq4").factory(384) == "PCA192,SQ4"
    assert get_codec("float16").factory(7) == "<f2"
    with pytest.raises(StoreError, match="unknown fingerprint codec 'zip'"):
        get_codec("zip")
    with pytest.raises(StoreError, match="unknown codec kind"):
        CodecSpec("x", "rq")
    spec = SMALL_PQ
    assert CodecSpec.from_json(spec.to_json()) == spec
    assert spec.same_codec(get_codec("pq64")) and not spec.same_codec(get_codec("pq48"))
    with pytest.raises(StoreError, match="unreadable codec description"):
        CodecSpec.from_json('{"name": 1, "bogus": 2}')


@pytest.mark.parametrize("name", sorted(CODECS))
def test_every_codec_roundtrips_through_a_store(tmp_path, name):
    spec = get_codec(name)
    if spec.trained:
        spec = spec.with_options(train_min=max(1024, 2**spec.nbits * 4 if spec.kind == "pq" else 0))
    its = items(FakeEncoder(), texts(150))  # 2,100 vectors of 32 dims
    with FingerprintStore(tmp_path, codec=spec) as s:
        for lo in range(0, 150, 50):
            s.put_many(its[lo : lo + 50])
        assert s.stats().trained and s.verify() == []
        got = s.get_many([k for k, _ in its])
    floor = {"float32": 0.99999, "float16": 0.9999, "sq8": 0.999, "sq4": 0.95}.get(name, 0.6)
    assert all(close_enough(g, fp, floor) for g, (_, fp) in zip(got, its, strict=True))


def test_training_is_deterministic_and_seeded(tmp_path):
    rng = np.random.default_rng(3)
    sample = rng.standard_normal((2000, 32)).astype(np.float32)
    a = train(SMALL_PQ, sample)
    b = train(SMALL_PQ, sample)
    assert a[1] == b[1] and a[2] == b[2]  # same state bytes, same digest
    c = train(SMALL_PQ.with_options(seed=1), sample)
    assert c[1] != a[1]
    book = Codebook(1, "pq64", 32, a[0], a[1], a[2], train_cos=a[3])
    codec = build_codec(book)
    dec = codec.decode(codec.encode(sample[:10]))
    assert dec.dtype == np.float32 and np.allclose(np.linalg.norm(dec, axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError, match="checksum"):
        build_codec(Codebook(1, "pq64", 32, a[0], a[1][:-1], a[2]))
    ids, counts = np.arange(1, 101), np.full(100, 50)
    small = SMALL_PQ.with_options(train_min=256, train_max=1000)
    rows = training_rows(ids, counts, small)
    assert len(rows) == 20 and np.all(np.diff(rows) > 0)
    assert np.array_equal(rows, training_rows(ids, counts, small))


def test_two_stores_fed_alike_train_identical_codebooks(tmp_path):
    its = items(FakeEncoder(), texts(100))
    digests = []
    for name in ("a", "b"):
        with FingerprintStore(tmp_path / name, codec=SMALL_PQ) as s:
            s.put_many(its, encoder_id="fake|dim32")
        with sqlite3.connect(tmp_path / name / DB_NAME) as conn:
            digests.append(
                conn.execute(
                    "SELECT sha256, encoder, train_vectors FROM codebooks WHERE codec='pq64'"
                ).fetchone()
            )
    assert digests[0] == digests[1] and digests[0][1] == "fake|dim32"


# -- migration ---------------------------------------------------------------------------------
def test_cli_migrate_v1_then_change_codec(tmp_path):
    its = items(FakeEncoder(), texts(30))
    write_v1_store(tmp_path, its)

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "semtoken_rag.cli.main", "store", *argv],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )

    res = cli("migrate", str(tmp_path), "--no-progress", "--codec", "float16")
    assert res.returncode == 0, res.stderr
    assert "format 1 (float32) -> format 2 (float16), 30 entries" in res.stdout
    assert not (tmp_path / "vectors.faiss").exists()
    res = cli("migrate", str(tmp_path), "--no-progress")
    assert res.returncode == 0 and "nothing to do" in res.stdout
    res = cli("migrate", str(tmp_path), "--no-progress", "--codec", "sq8")
    assert res.returncode == 0 and "(float16) -> format 2 (sq8)" in res.stdout
    info = cli("info", str(tmp_path), "--check", "--json")
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["codec"] == "sq8" and data["entries"] == 30 and data["problems"] == []
    with FingerprintStore(tmp_path) as s:
        got = s.get_many([k for k, _ in its])
        assert all(close_enough(g, fp, 0.999) for g, (_, fp) in zip(got, its, strict=True))
    res = cli("migrate", str(tmp_path / "nowhere"))
    assert res.returncode == 2 and "no fingerprint store" in res.stderr


def test_migrate_reports_damaged_rows_and_trains_on_the_source(tmp_path):
    its = items(FakeEncoder(), texts(120))
    write_v1_store(tmp_path, its)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE entries SET checksum = zeroblob(32) WHERE id IN (3, 120)")
    report = migrate(tmp_path, SMALL_PQ, batch_rows=7)
    assert report.entries == 118 and report.damaged == 2 and report.source_format == 1
    assert report.bytes_after < report.bytes_before
    with FingerprintStore(tmp_path) as s:
        assert s.stats().trained and s.stats().staged_entries == 0 and s.verify() == []
        got = s.get_many([k for k, _ in its])
        assert got[2] is None and got[119] is None
        assert all(close_enough(g, fp, 0.8) for g, (_, fp) in zip(got, its) if g is not None)


def test_migrate_refuses_damaged_and_future_stores(tmp_path):
    FingerprintStore(tmp_path / "future", codec="float16").close()
    with sqlite3.connect(tmp_path / "future" / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = 7 WHERE name = 'format_version'")
    with pytest.raises(StoreError, match="format 7"):
        migrate(tmp_path / "future")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / DB_NAME).write_bytes(b"not a database at all" * 300)
    with pytest.raises(StoreError, match="damaged"):
        migrate(tmp_path / "bad")
    assert (tmp_path / "bad" / DB_NAME).read_bytes().startswith(b"not a database")
