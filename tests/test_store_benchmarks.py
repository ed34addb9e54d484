"""The store benchmarks in their smallest settings write reports with the expected rows and
columns (store at scale, writer breakdown, Ray driver ceiling, splitters).

No timing assertions (CONTRIBUTING): only the files, their rows and their keys, and the
invariants the benchmarks exist to show (every served chunk has one vector per word).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize("distinct", [False, True])
def test_scale_corpus_documents_are_what_encode_documents_builds(distinct: bool) -> None:
    """The store-at-scale corpus skips only the codec: with the exact raw codec (codes = the
    vectors) its documents equal ``encode_documents``'s, byte for byte (keys, blocks,
    checksums, shingles); sliced chunks are substrings; keys are distinct."""
    import numpy as np
    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    from semtoken_rag.core.segment import find_words
    from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
    from semtoken_rag.store import DocumentFingerprints, FingerprintStore, encode_documents
    from semtoken_rag.store.codebooks import runtime_codec

    words = ["Alpha", "beta,", "gamma;", "delta", "epsilon", "zeta", "x" * 63, "eta", "漢字",
             "theta", "Ça", "kappa", "lambda", "mu", "nu"]  # fmt: skip
    chunks = [" ".join((words[i:] + words[:i]) * (3 + i)) for i in range(5)]
    vectors = np.random.default_rng(0).standard_normal((4000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # as a store holds them
    with FingerprintStore(codec="float32") as store:
        codecs = store.codec_set(8)
    codes = runtime_codec(codecs.book).encode(vectors)
    corpus = ScaleCorpus(chunks, np.full(5, 100), codes, codecs, "enc", distinct=distinct)
    keys = set()
    for i in range(15):
        got, text = corpus.document(i), corpus.text(i)
        n = len(find_words(text))
        lo = (i * 104729) % (len(codes) - n + 1)
        fp = ChunkFingerprints(runtime_codec(codecs.book).decode(codes[lo : lo + n]),
                               find_words(text))  # fmt: skip
        want = encode_documents([DocumentFingerprints(fingerprint_key(text, "enc"), text, fp)],
                                codecs, encoder="enc")[0]  # fmt: skip
        assert got.key == want.key == corpus.key(i) and got.n_words == want.n_words == n
        assert got.blocks == want.blocks
        assert np.array_equal(got.shingles, want.shingles)
        assert np.array_equal(got.positions, want.positions)
        assert corpus.sliced(i, np.random.default_rng(i)) in text
        keys.add(got.key)
    assert len(keys) == 15
    tagged = "~2" in corpus.text(12)  # the third copy of a chunk (5 chunks)
    assert tagged == distinct


def _report(folder: Path, name: str) -> dict:
    assert (folder / f"{name}.md").read_text(encoding="utf-8").count("|") > 10
    return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.slow  # real MiniLM fingerprints
def test_store_scale_smallest(shared_data: Path, tmp_path: Path) -> None:
    from semtoken_lab.bench.store_scale import run_store_scale

    out = tmp_path / "scale"
    run_store_scale([150], out, data_root=shared_data, work=tmp_path, pool_chunks=12,
                    train_min=2048)  # fmt: skip
    data = _report(out, "store_scale")
    assert {"machine", "workload", "rows"} <= set(data)
    rows = data["rows"]
    assert [r["documents"] for r in rows] == [150]
    for r in rows:
        for key in ("bytes_per_1k_tokens", "write_docs_per_s", "written_bytes_per_doc",
                    "open_ms_verify", "open_ms_no_verify", "peak_rss_writer_mib"):  # fmt: skip
            assert r[key] > 0
        for kind in ("exact", "sliced"):
            assert r["lookups"][kind]["hit_rate"] == 1.0
            assert {"fresh_p50_ms", "fresh_p99_ms", "warm_p50_ms", "warm_p99_ms"} <= set(
                r["lookups"][kind]
            )
    assert rows[0]["eviction"]["newest_tenth_present"] == 1.0  # the smallest size evicts
    assert not list(tmp_path.glob("semtoken-store-scale-*"))  # temporary stores removed


@pytest.mark.slow  # real MiniLM fingerprints
def test_writer_breakdown_smallest(shared_data: Path, tmp_path: Path) -> None:
    from semtoken_lab.bench.writer import run_writer

    res = run_writer(tmp_path, data_root=shared_data, sources=("narrativeqa",), per_source=8,
                     repeats=1, train_min=1024)  # fmt: skip
    data = _report(tmp_path, "writer")
    assert [(r["codec"], r["unit"]) for r in data["rows"]] == [
        ("pq64", "document"), ("pq128x4", "document"), ("pq64", "chunk256"),
        ("pq128x4", "chunk256"),
    ]  # fmt: skip
    pq64, pq4 = data["rows"][0], data["rows"][1]
    assert pq64["raw_blas_s"] is not None and pq4["raw_blas_s"] is None  # 4-bit: FAISS only
    assert {"guard", "build", "write", "insert_over_raw"} <= set(pq64["shares"])
    assert set(pq64["build_parts_s"]) == {"words", "pack", "shingles", "checksums"}
    assert 0 < pq64["mean_cos"] <= 1 and pq64["code_bytes_per_word"] == 64
    assert res["workload"]["measured_documents"] > 0
    assert list(tmp_path.glob("fingerprints-*.npy")) == [] and (tmp_path / "cache").is_dir()


@pytest.mark.slow
@pytest.mark.ray
def test_ray_driver_smallest(ray_local: Any, shared_data: Path, tmp_path: Path) -> None:
    """On the session's local Ray (the benchmark uses a Ray it finds, and leaves it running:
    starting one of its own cost the Ray tests a restart)."""
    from semtoken_lab.bench.ray_driver import run_driver

    # One Ray variant: the other ("fingerprints") runs the same ray_ingest with the library's
    # own actor code path, which tests/test_ray_*.py cover.
    run_driver(tmp_path, chunks=150, codecs=("float32",), actors=(1,), variants=("encoded",),
               data_root=shared_data)  # fmt: skip
    data = _report(tmp_path, "ray_driver")
    assert ray_local.is_initialized()  # left running for the next Ray test
    rows = data["rows"]
    assert [(r["variant"], r["codec"], r["actors"]) for r in rows] == [
        ("no Ray: store.write alone", "float32", 0), ("encoded", "float32", 1),
    ]  # fmt: skip
    for r in rows:
        assert r["documents"] == 150 and 0 < r["words"] <= 150 * 120
        assert {"docs_per_s", "words_per_s", "tokens_per_s", "mb_per_s"} <= set(r)


@pytest.mark.slow  # real MiniLM fingerprints
def test_splitters_smallest(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("langchain_text_splitters")
    pytest.importorskip("llama_index.core")
    from semtoken_lab.bench.splitters import run_splitters

    run_splitters(tmp_path, data_root=shared_data, sources=("narrativeqa",), per_source=6,
                  quick=True, train_min=1024)  # fmt: skip
    data = _report(tmp_path, "splitters")
    names = [r["splitter"] for r in data["rows"]]
    assert names == ["recursive-chars", "token-smollm2", "sentence-llamaindex", "token-minilm",
                     "verbatim (ingested chunks)"]  # fmt: skip
    for r in data["rows"]:
        assert r["chunks"] > 0 and {"warm_p50_ms", "hinted_p99_ms", "aligned"} <= set(r)
        if r["served"] > 0:
            assert r["shape_ok"] == 1.0  # one vector per word of every served chunk
    assert data["rows"][-1]["served"] == 1.0  # ingested chunks are found by key
    store = data["workload"]["store"]
    assert {"bytes_per_1k_tokens", "old_format_bytes_per_1k_tokens", "tables"} <= set(store)
