"""FingerprintStore: the engine protocol, codecs, persistence, LRU, integrity, typed errors, the
engine with a store, and the real MiniLM."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from semtoken_rag.errors import InvalidInputError, StoreError
from semtoken_rag.fingerprints import ChunkFingerprints, ChunkSource, fingerprint_key
from semtoken_rag.ingestion import IngestOptions
from semtoken_rag.store import FingerprintStore, StoreWarning
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.store_helpers import (
    ROOT,
    SMALL_PQ,
    close_enough,
    digest,
    fill,
    long_texts,
    narrative_documents,
    same_exactly,
    sql,
    texts,
    words_slice,
    write_old_format_store,
)

#: Codec -> lowest mean cosine of a served chunk to its original (fake 32-dim vectors).
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


# -- the engine protocol -------------------------------------------------------------------------
def test_roundtrip_hits_misses(store):
    """The engine's path: misses put as short documents, then served by their exact text."""
    enc = FakeEncoder()
    docs = texts(200)  # 2,800 words: the small PQ trains on the way
    fps = enc.encode_texts(docs)
    assert store.lookup([], enc.cache_id) == []
    assert store.lookup(docs[:20], enc.cache_id) == [None] * 20
    for lo in range(0, 200, 50):
        store.put(docs[lo : lo + 50], fps[lo : lo + 50], enc.cache_id)
    store.put(docs[:5], fps[:5], enc.cache_id)  # already stored: content-addressed, no change
    got = store.lookup([*docs, docs[0], "absent from every document"], enc.cache_id)
    floor = FLOORS[store.codec.name]
    assert all(close_enough(g, fp, floor) for g, fp in zip(got, fps, strict=False))
    if store.codec.name == "float32":
        assert all(same_exactly(g, fp) for g, fp in zip(got, fps, strict=False))
    assert same_exactly(got[200], got[0]) and got[201] is None
    st = store.stats()
    assert (st.hits, st.misses, st.documents) == (201, 21, 200)
    assert st.words == sum(fp.n_words for fp in fps) and len(store) == 200
    assert st.trained and st.staged_words == 0 and st.codec == store.codec.name
    assert store.verify() == []
    if store.path is not None:
        store.close()  # the float16 staging pages freed by the training went back to the FS
        free = sql(store.path, "PRAGMA freelist_count")[0][0]
        assert free <= 6, free


def test_default_codec_is_pq64_and_reopen_keeps_it(tmp_path):
    enc = FakeEncoder()
    docs = texts(5)
    fps = enc.encode_texts(docs)
    with FingerprintStore(tmp_path) as s:
        assert s.codec.name == "pq64"
        s.put(docs, fps, enc.cache_id)
        st = s.stats()  # float16 until trained
        assert not st.trained and st.staged_words == st.words == sum(f.n_words for f in fps)
    with FingerprintStore(tmp_path) as s:
        assert s.codec.name == "pq64"
        got = s.lookup(docs, enc.cache_id)
        assert all(close_enough(g, fp, 0.9999) for g, fp in zip(got, fps, strict=True))
    with pytest.raises(StoreError, match=r"uses codec 'pq64'.*new directory"):
        FingerprintStore(tmp_path, codec="sq8")
    FingerprintStore(tmp_path, codec="pq64").close()  # same codec by name: fine
    FingerprintStore(tmp_path, codec=SMALL_PQ).close()  # training options may differ


def test_threads_share_one_store(tmp_path):
    enc = FakeEncoder()
    docs = long_texts(200, words=30)
    fps = enc.encode_texts(docs)
    errors: list[BaseException] = []
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:

        def work(lo: int) -> None:
            try:
                for i in range(lo, lo + 100, 10):
                    s.put(docs[i : i + 10], fps[i : i + 10], enc.cache_id)
                    assert all(g is not None for g in s.lookup(docs[i : i + 10], enc.cache_id))
            except BaseException as exc:  # collected and asserted in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(lo,)) for lo in (0, 50, 100, 50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert s.stats().documents == 200 and s.stats().trained and s.verify() == []
        got = s.lookup(docs, enc.cache_id)
        assert all(close_enough(g, fp, 0.8) for g, fp in zip(got, fps, strict=True))


# -- LRU ------------------------------------------------------------------------------------------
def _sizes(enc: FakeEncoder, docs: list[str]) -> list[int]:
    """Payload bytes of each document alone in a float16 store."""
    out = []
    for d in docs:
        with FingerprintStore(codec="float16") as probe:
            probe.put([d], enc.encode_texts([d]), enc.cache_id)
            out.append(probe.stats().payload_bytes)
    return out


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_lru_eviction_under_max_bytes(tmp_path, where):
    enc = FakeEncoder()
    docs = long_texts(4, words=40)
    fps = enc.encode_texts(docs)
    s0, s1, s2, s3 = _sizes(enc, docs)
    limit = max(s0 + s1 + s2, s0 + s2 + s3)  # holds three, never all four
    assert limit < s0 + s1 + s2 + s3
    path = None if where == "memory" else tmp_path
    with FingerprintStore(path, codec="float16", max_bytes=limit, touch_interval=0.0) as s:
        s.put(docs[:3], fps[:3], enc.cache_id)
        assert s.lookup(docs[:1], enc.cache_id)[0] is not None  # doc 0 most recently used
        s.put(docs[3:], fps[3:], enc.cache_id)
        present = [g is not None for g in s.lookup(docs, enc.cache_id)]
        assert present == [True, False, True, True]
        st = s.stats()
        assert st.payload_bytes == s0 + s2 + s3 <= limit and st.documents == 3
        assert s.verify() == []


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_the_newest_document_always_stays(tmp_path, where):
    """A limit below one document's size: each write keeps only the newest document."""
    enc = FakeEncoder()
    docs = long_texts(3, words=40)
    path = None if where == "memory" else tmp_path
    with FingerprintStore(path, codec="float16", max_bytes=10) as s:
        for i, d in enumerate(docs):
            s.put([d], enc.encode_texts([d]), enc.cache_id)
            present = [g is not None for g in s.lookup(docs, enc.cache_id)]
            assert present == [j == i for j in range(3)]
            assert len(s) == 1 and s.verify() == []


def test_lru_refreshes_are_buffered_and_survive_reopen(tmp_path):
    enc = FakeEncoder()
    docs = long_texts(4, words=40)
    fps = enc.encode_texts(docs)
    s0, s1, s2, s3 = _sizes(enc, docs)
    key = fingerprint_key(docs[0], enc.cache_id)

    def last_used() -> float:  # as committed in the database (another connection reads it)
        return sql(tmp_path, "SELECT last_used FROM documents WHERE key = ?", (key,))[0][0]

    with FingerprintStore(tmp_path, codec="float16", touch_interval=0.0) as s:
        s.put(docs[:3], fps[:3], enc.cache_id)
        stored = last_used()
        s.lookup(docs[:1], enc.cache_id)  # buffered: a lookup never writes
        assert last_used() == stored
        s.flush()
        assert last_used() > stored
        s.lookup(docs[:1], enc.cache_id)  # buffered again, written at close
        flushed = last_used()
    assert last_used() > flushed
    with FingerprintStore(tmp_path, max_bytes=max(s0 + s1 + s2, s0 + s2 + s3)) as s:
        s.put(docs[3:], fps[3:], enc.cache_id)
        present = [g is not None for g in s.lookup(docs, enc.cache_id)]
        assert present == [True, False, True, True]


def test_without_the_refresh_the_oldest_document_goes(tmp_path):
    """The control of the test above: no hit on doc 0, so doc 0 (oldest) is evicted."""
    enc = FakeEncoder()
    docs = long_texts(4, words=40)
    fps = enc.encode_texts(docs)
    s0, s1, s2, s3 = _sizes(enc, docs)
    with FingerprintStore(tmp_path, codec="float16", touch_interval=0.0) as s:
        s.put(docs[:3], fps[:3], enc.cache_id)
    with FingerprintStore(tmp_path, max_bytes=max(s0 + s1 + s2, s1 + s2 + s3)) as s:
        s.put(docs[3:], fps[3:], enc.cache_id)
        present = [g is not None for g in s.lookup(docs, enc.cache_id)]
        assert present == [False, True, True, True]


# -- formats and codecs ---------------------------------------------------------------------------
@pytest.mark.parametrize(("version", "journal"), [(1, "wal"), (2, "wal"), (2, "delete")])
def test_older_format_is_refused_and_left_untouched(tmp_path, version, journal):
    """Formats 1 and 2 keyed fingerprints by chunk text: refused with a message saying to
    re-ingest into a new directory, and the old database is left byte for byte as it was
    (whatever its SQLite journal mode), nothing moved or left beside it but the lock file."""
    write_old_format_store(tmp_path, version, journal)
    before = digest(tmp_path)
    for kw in ({}, {"read_only": True}, {"codec": "float16"}):
        with pytest.raises(StoreError, match=rf"format {version}.*Re-ingest.*new directory"):
            FingerprintStore(tmp_path, **kw)
    after = digest(tmp_path)
    after.pop(".lock", None)
    assert after == before


def test_format_versions_and_codecs_are_typed_errors(tmp_path):
    FingerprintStore(tmp_path).close()
    sql(tmp_path, "UPDATE meta SET value = 999 WHERE name = 'format_version'")
    with pytest.raises(StoreError, match="format 999, written by a newer semtoken-rag"):
        FingerprintStore(tmp_path)
    sql(tmp_path, "UPDATE meta SET value = 3 WHERE name = 'format_version'")
    sql(tmp_path, "UPDATE meta SET value = 'rq32' WHERE name = 'codec'")
    with pytest.raises(StoreError, match="codec 'rq32', unknown to this semtoken-rag"):
        FingerprintStore(tmp_path)
    with pytest.raises(StoreError, match="unknown fingerprint codec 'nope'"):
        FingerprintStore(codec="nope")
    assert not list(tmp_path.glob("quarantine-*"))  # not damage: nothing moved


# -- integrity -------------------------------------------------------------------------------------
def _three_documents(tmp_path, enc: FakeEncoder) -> tuple[list[str], list[ChunkFingerprints]]:
    """Three 300-word documents (3 blocks each) in a float32 store at ``tmp_path``."""
    docs = long_texts(3, words=300)
    with FingerprintStore(tmp_path, codec="float32") as s:
        fill(s, enc, docs)
    return docs, enc.encode_texts(docs)


def _block_of(tmp_path, enc: FakeEncoder, doc: str, block: int) -> int:
    """Row id of a document's block (``document << 20 | block``, semtoken_rag/store/db.py)."""
    key = fingerprint_key(doc, enc.cache_id)
    (doc_id,) = sql(tmp_path, "SELECT id FROM documents WHERE key = ?", (key,))[0]
    return (doc_id << 20) | block


@pytest.mark.parametrize("what", ["codes", "words", "checksum", "n_words", "deleted"])
def test_damaged_block_is_a_miss_a_warning_and_the_document_is_removed(tmp_path, what):
    enc = FakeEncoder()
    docs, fps = _three_documents(tmp_path, enc)
    bid = _block_of(tmp_path, enc, docs[1], 1)  # the second block of the second document
    if what == "deleted":
        sql(tmp_path, "DELETE FROM blocks WHERE id = ?", (bid,))
    elif what == "n_words":
        sql(tmp_path, "UPDATE blocks SET n_words = n_words - 1 WHERE id = ?", (bid,))
    else:
        blob = bytearray(sql(tmp_path, f"SELECT {what} FROM blocks WHERE id = ?", (bid,))[0][0])
        blob[5] ^= 0xFF
        sql(tmp_path, f"UPDATE blocks SET {what} = ? WHERE id = ?", (bytes(blob), bid))
    chunks = [words_slice(d, 100, 220) for d in docs]  # each covers blocks 0 and 1
    with FingerprintStore(tmp_path) as s:
        assert s.verify() != []
        with pytest.warns(StoreWarning, match="checksum"):
            got = s.lookup(chunks, enc.cache_id)
        assert got[1] is None
        for i in (0, 2):
            assert same_exactly(
                got[i], ChunkFingerprints(fps[i].vectors[100:220], got[i].word_spans)
            )
        assert s.stats().documents == 2 and s.verify() == []  # removed with all its rows
        assert fill(s, enc, docs).encoded == 1  # the recomputed document goes back in
        again = s.lookup(chunks[1:2], enc.cache_id)[0]
        assert same_exactly(again, ChunkFingerprints(fps[1].vectors[100:220], again.word_spans))


def test_a_lookup_reads_only_the_blocks_it_covers(tmp_path):
    """Damage in a block the chunk does not cover is not noticed by that lookup (and the
    chunk is served correctly); a chunk over the damaged block finds it."""
    enc = FakeEncoder()
    docs, fps = _three_documents(tmp_path, enc)
    bid = _block_of(tmp_path, enc, docs[0], 2)
    blob = bytearray(sql(tmp_path, "SELECT codes FROM blocks WHERE id = ?", (bid,))[0][0])
    blob[0] ^= 0xFF
    sql(tmp_path, "UPDATE blocks SET codes = ? WHERE id = ?", (bytes(blob), bid))
    with FingerprintStore(tmp_path) as s, warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        got = s.lookup([words_slice(docs[0], 10, 120)], enc.cache_id)[0]
        assert same_exactly(got, ChunkFingerprints(fps[0].vectors[10:120], got.word_spans))
        assert s.stats().documents == 3
        warnings.simplefilter("ignore", StoreWarning)
        assert s.lookup([words_slice(docs[0], 200, 290)], enc.cache_id) == [None]
        assert s.stats().documents == 2


def test_block_pointed_at_another_codebook_is_damage(tmp_path):
    """A block's checksum binds its codebook: pointing it at another one is detected."""
    enc = FakeEncoder()
    docs = long_texts(40, words=60)  # 2,400 words: the small PQ trains
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        fill(s, enc, docs)
        assert s.stats().trained
    (pq,) = sql(tmp_path, "SELECT id FROM codebooks WHERE codec = 'pq64'")[0]
    (staging,) = sql(tmp_path, "SELECT id FROM codebooks WHERE codec = 'float16'")[0]
    victim = docs[7]
    moved = _block_of(tmp_path, enc, victim, 0)
    assert sql(tmp_path, "SELECT codebook FROM blocks WHERE id = ?", (moved,)) == [(pq,)]
    sql(tmp_path, "UPDATE blocks SET codebook = ? WHERE id = ?", (staging, moved))
    with FingerprintStore(tmp_path) as s:
        with pytest.warns(StoreWarning, match="checksum"):
            assert s.lookup([victim], enc.cache_id) == [None]
        assert s.stats().documents == 39 and s.verify() == []


# -- arguments -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, True, 1.5, math.nan, "10"])
def test_bad_max_bytes_is_a_store_error(bad):
    with pytest.raises(StoreError, match="max_bytes"):
        FingerprintStore(max_bytes=bad)


@pytest.mark.parametrize("bad", ["nope", "PQ64", "", 64])
def test_bad_codec_names_are_store_errors(bad):
    with pytest.raises(StoreError, match="unknown fingerprint codec"):
        FingerprintStore(codec=bad)


def test_bad_arguments():
    with pytest.raises(StoreError, match="read_only needs a store directory"):
        FingerprintStore(read_only=True)
    s = FingerprintStore(codec="float32")
    enc = FakeEncoder()
    with pytest.raises(InvalidInputError, match="2 sources for 1 chunks"):
        s.lookup(["a b"], enc.cache_id, [None, None])
    s.close()
    s.close()  # idempotent
    for call in (
        lambda: s.lookup(["x"], enc.cache_id),
        lambda: s.put(["x"], enc.encode_texts(["x"]), enc.cache_id),
        lambda: len(s),
        lambda: s.stats(),
    ):
        with pytest.raises(StoreError, match="closed"):
            call()


@pytest.mark.slow
def test_import_and_a_raw_store_do_not_load_faiss():
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "import semtoken_rag, semtoken_rag.store\n"
        "from tests.fakes import FakeEncoder\n"
        "from tests.store_helpers import fill, long_texts\n"
        "enc = FakeEncoder()\n"
        "with semtoken_rag.store.FingerprintStore(codec='float16') as s:\n"
        "    fill(s, enc, long_texts(3))\n"
        "    assert all(s.lookup(long_texts(3), enc.cache_id))\n"
        "assert 'faiss' not in sys.modules, 'faiss was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


# -- the engine with a store --------------------------------------------------------------------
def test_compressor_with_store_warm_encodes_nothing(tmp_path, shared_data):
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion.chunking import chunk_words

    docs = narrative_documents(shared_data, 6)
    chunks = [c for d in docs for c in chunk_words(d, 80, 20) if len(c.split()) >= 19]
    cfg = SemTokenConfig(compression_ratio=0.5)
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec="float32") as s:
        comp = Compressor(cfg, encoder=enc, store=s, counter=WhitespaceCounter())
        assert comp.ingest(docs[:4], IngestOptions(progress=False)).encoded == 4
        assert comp.ingest(docs, IngestOptions(progress=False)).encoded == 2
        assert enc.calls == 6
    enc2 = FakeEncoder()
    with FingerprintStore(tmp_path) as s:
        comp = Compressor(cfg, encoder=enc2, store=s, counter=WhitespaceCounter())
        warm = comp.compress(chunks, "who travels to the island")
        assert enc2.calls == 0 and warm.encoder_calls == 0
        assert s.stats().misses == 0 and s.stats().hits == len(set(chunks))
    cold = Compressor(cfg, encoder=FakeEncoder(), counter=WhitespaceCounter()).compress(
        chunks, "who travels to the island"
    )
    assert cold.encoder_calls > 0
    assert [c.text for c in warm.chunks] == [c.text for c in cold.chunks]


def test_compressor_puts_its_misses_and_serves_them_next_time(tmp_path):
    from semtoken_rag import Compressor, SemTokenConfig

    chunks = texts(6)
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec="float32") as s:
        comp = Compressor(SemTokenConfig(), encoder=enc, store=s, counter=WhitespaceCounter())
        assert comp.compress(chunks, "river").encoder_calls == 6
        assert comp.compress(chunks, "stone").encoder_calls == 0
        assert enc.calls == 6 and len(s) == 6


def test_compressor_ingest_needs_a_persistent_store():
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.errors import ConfigError

    comp = Compressor(SemTokenConfig(), encoder=FakeEncoder(), counter=WhitespaceCounter())
    with pytest.raises(ConfigError, match="FingerprintStore"):
        comp.ingest(["a document"])


def test_no_warnings_on_clean_open(tmp_path):
    enc = FakeEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        with FingerprintStore(tmp_path) as s:
            fill(s, enc, long_texts(5))
        with FingerprintStore(tmp_path) as s:
            assert all(s.lookup(long_texts(5), enc.cache_id))
        FingerprintStore(tmp_path, read_only=True).close()


@pytest.mark.parametrize("kind", ["store", "memory-cache"])
def test_engine_store_protocol_satisfied(kind):
    from semtoken_rag.cache import MemoryFingerprintCache
    from semtoken_rag.protocols import FingerprintStoreProtocol

    store: FingerprintStoreProtocol = (
        FingerprintStore(codec="float32") if kind == "store" else MemoryFingerprintCache()
    )
    enc = FakeEncoder()
    docs = long_texts(3)
    fps = enc.encode_texts(docs)
    assert store.lookup(docs, enc.cache_id) == [None] * 3
    store.put(docs, fps, enc.cache_id)
    got = store.lookup(docs, enc.cache_id, [ChunkSource(document="x"), None, ChunkSource(start=0)])
    assert all(same_exactly(g, fp) for g, fp in zip(got, fps, strict=True))
    assert store.lookup(docs, "another encoder") == [None] * 3


# -- real MiniLM + FAISS ---------------------------------------------------------------------
@pytest.mark.slow
def test_cold_vs_warm_narrativeqa_real_minilm(tmp_path, narrativeqa, real_compressor):
    """The engine's own path: a cold run encodes every distinct chunk once and puts it; a warm
    run (reopened store) encodes nothing and renders byte-identical results."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion.chunking import chunk_words

    enc = real_compressor.encoder
    contexts = [(chunk_words(r["context"], 120, 20), r["question"]) for r in narrativeqa]
    n_chunks = len({c for chunks, _ in contexts for c in chunks})
    with FingerprintStore(tmp_path, codec="float32") as s:
        comp = Compressor(SemTokenConfig(), encoder=enc, store=s)
        cold = comp.compress_many(contexts)  # one batched pass over chunks and queries
        assert cold[0].encoder_calls == n_chunks
    with FingerprintStore(tmp_path) as s:
        comp = Compressor(SemTokenConfig(), encoder=enc, store=s)
        warm = comp.compress_many(contexts)
        assert sum(r.encoder_calls for r in warm) == 0  # zero chunk encodings when warm
        assert s.stats().misses == 0 and s.verify() == []
    for a, b in zip(cold, warm, strict=True):
        assert [c.text.encode() for c in a.chunks] == [c.text.encode() for c in b.chunks]
        assert [c.offsets for c in a.chunks] == [c.offsets for c in b.chunks]


@pytest.mark.slow
def test_default_codec_on_real_minilm_trains_and_decodes_faithfully(
    tmp_path, shared_data, real_compressor
):
    """The default codec with its real settings: trained by the write that brings the staged
    words to 16,384 (the essays of the benchmark's training corpus, about 18k words), staged
    blocks re-encoded, fidelity as measured in docs/store.md."""
    from semtoken_rag.store import DocumentFingerprints, encode_documents

    enc = real_compressor.encoder
    docs = []
    with (shared_data / "needle_haystack" / "essays.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and sum(len(d.split()) for d in docs) < 18000:
                docs.append(json.loads(line)["text"])
    fps = enc.encode_texts(docs)
    assert sum(fp.n_words for fp in fps) > 16384
    with FingerprintStore(tmp_path) as s:
        for lo in range(0, len(docs), 4):
            part = [
                DocumentFingerprints(fingerprint_key(t, enc.cache_id), t, fp)
                for t, fp in zip(docs[lo : lo + 4], fps[lo : lo + 4], strict=True)
            ]
            s.write(encode_documents(part, s.codec_set(enc.dim), encoder=enc.cache_id))
        stats = s.stats()
        assert stats.trained and stats.codec == "pq64" and s.verify() == []
        assert stats.staged_words <= stats.words // 50  # a few guard refusals at most
        chunks = [(i, lo) for i in range(len(docs)) for lo in range(0, fps[i].n_words - 150, 400)]
        got = s.lookup([words_slice(docs[i], lo, lo + 150) for i, lo in chunks], enc.cache_id)
        cos = np.concatenate(
            [np.sum(g.vectors * fps[i].vectors[lo : lo + 150], axis=1)
             for g, (i, lo) in zip(got, chunks, strict=True)]
        )  # fmt: skip
        assert cos.mean() > 0.85
        assert stats.payload_bytes / stats.words < 72  # 64 B codes + packed words
    (row,) = sql(tmp_path, "SELECT encoder, train_vectors FROM codebooks WHERE codec = 'pq64'")
    assert row[0] == enc.cache_id and row[1] >= 16384


@pytest.mark.slow
def test_cli_ingest_and_info(tmp_path, shared_data, real_compressor, capsys):
    from semtoken_rag.cli import ingest as ingest_cli
    from semtoken_rag.cli import store as store_cli
    from semtoken_rag.cli.main import build_parser

    contexts = narrative_documents(shared_data, 4)
    doc = tmp_path / "a.md"
    doc.write_text(contexts[0], encoding="utf-8")
    jl = tmp_path / "b.jsonl"
    jl.write_text("\n".join(json.dumps({"body": c}) for c in contexts[1:]), encoding="utf-8")
    st_dir = tmp_path / "st"
    argv = ["ingest", str(doc), str(jl), "--store", str(st_dir), "--text-field", "body",
            "--codec", "sq8", "--no-progress"]  # fmt: skip
    assert ingest_cli.run(build_parser(argv).parse_args(argv)) == 0
    out = capsys.readouterr().out
    assert "4 documents" in out and "4 encoded" in out and "codec sq8" in out
    enc = real_compressor.encoder
    with FingerprintStore(st_dir) as s:
        assert s.codec.name == "sq8" and len(s) == 4
        chunks = [words_slice(c, 20, 120) for c in contexts]
        got = s.lookup(chunks, enc.cache_id, [ChunkSource(document=str(doc)), None, None, None])
        assert all(g is not None and g.n_words == 100 for g in got)
    argv = ["store", "info", str(st_dir), "--check", "--json"]
    assert store_cli.run(build_parser(argv).parse_args(argv)) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["documents"] == 4 and info["problems"] == [] and info["codec"] == "sq8"
    with pytest.raises(StoreError, match="no fingerprint store"):
        argv = ["store", "info", str(tmp_path)]
        store_cli.run(build_parser(argv).parse_args(argv))
    # --chunk-size: each word window is a document of its own (named by its file)
    from semtoken_rag.ingestion.chunking import chunk_words

    argv = ["ingest", str(doc), "--store", str(tmp_path / "windows"), "--chunk-size", "80",
            "--chunk-overlap", "20", "--codec", "float16", "--no-progress"]  # fmt: skip
    assert ingest_cli.run(build_parser(argv).parse_args(argv)) == 0
    windows = chunk_words(contexts[0], 80, 20)
    assert f"{len(set(windows))} encoded" in capsys.readouterr().out
    with FingerprintStore(tmp_path / "windows") as s:
        assert len(s) == len(set(windows))
        got = s.lookup(windows, enc.cache_id, [ChunkSource(document=str(doc))] * len(windows))
        assert all(g is not None for g in got)


@pytest.mark.parametrize("codec", ["float32", "pq64"])
def test_verify_reads_the_codebooks_another_store_object_added(tmp_path, codec):
    """A long-lived store object (a service) verifies what another one (an ingestion job, or
    another process) wrote since it opened: the codebooks come from the file, not from the
    object's cache (it reported every new block as naming a missing codebook)."""
    enc = FakeEncoder()
    spec = SMALL_PQ if codec == "pq64" else codec
    with FingerprintStore(tmp_path, codec=spec) as service, FingerprintStore(tmp_path) as job:
        assert service.verify() == []
        fill(job, enc, long_texts(20))  # 1,200 words: the small pq64 trains (1,024)
        assert job.stats().trained and job.stats().staged_words == 0
        assert job.verify() == [] and service.verify() == []
