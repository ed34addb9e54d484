"""FingerprintStore under SIGKILL during ingestion (the codec's training included), concurrent
writer processes, and damaged database files."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag.store import FingerprintStore, StoreWarning
from tests.fakes import FakeEncoder
from tests.store_helpers import (
    DB_NAME,
    ROOT,
    close_enough,
    expected_slice,
    fill,
    long_texts,
    same_exactly,
    sql,
    words_slice,
)

#: The crash tests' PQ codec: trains after a few killed runs (4,096 staged words).
CRASH_PQ_TRAIN_MIN = 4096

WRITER = textwrap.dedent(
    """
    import json, random, sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest
    from semtoken_rag.store import FingerprintStore, get_codec
    from tests.fakes import FakeEncoder

    store_dir, side, seed, codec = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    train_min = int(sys.argv[6])
    enc, rng = FakeEncoder(), random.Random(seed)
    words = [f"w{i}" for i in range(5000)]  # distinct shingles: this test is about crashes
    spec = get_codec("pq64").with_options(train_min=train_min) if codec == "pq64" else codec
    with FingerprintStore(store_dir, codec=spec) as store, open(side, "w", encoding="utf-8") as fh:
        for batch in range(10**6):
            docs = [
                f"run {seed} batch {batch} document {j}: "
                + " ".join(rng.choice(words) for _ in range(rng.randint(30, 300)))
                for j in range(rng.randint(1, 8))
            ]
            opts = IngestOptions(batch_size=rng.randint(1, 4), progress=False)
            ingest(docs, store, LocalRunner(enc), opts)
            # Only after ingest returned (every batch committed) are the documents recorded.
            fh.write("".join(json.dumps(t) + "\\n" for t in docs))
            fh.flush()
            if batch % 3 == 2:
                chunk = " ".join(docs[0].split()[5:45])
                store.lookup([chunk], enc.cache_id)
                misses = [f"query-time miss {seed} {batch} {k}" for k in range(3)]
                store.put(misses, enc.encode_texts(misses), enc.cache_id)  # the engine's path
                store.flush()  # buffered LRU refreshes written: a kill may land inside it
    """
)

COMPRESSOR = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.ingestion import IngestOptions
    from semtoken_rag.store import FingerprintStore
    from tests.fakes import FakeEncoder, WhitespaceCounter
    from tests.store_helpers import SMALL_PQ, long_texts, words_slice

    store_dir, lo, hi = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    docs = long_texts(450, "shared", words=40)[lo:hi]
    with FingerprintStore(store_dir, codec=SMALL_PQ) as store:
        comp = Compressor(
            SemTokenConfig(), encoder=FakeEncoder(), store=store, counter=WhitespaceCounter()
        )
        chunks = [words_slice(d, 0, 25) for d in docs]
        for i in range(0, len(chunks), 7):
            comp.compress(chunks[i : i + 7], "river")  # misses put as short documents
        comp.ingest(docs, IngestOptions(batch_size=5, progress=False))
    """
)


def _script(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _recorded(side: Path) -> list[str]:
    """The documents one writer run recorded (the last piece may be half-written)."""
    if not side.exists():
        return []
    lines = side.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines[:-1] if line]


def _committed(side_dir: Path) -> list[str]:
    """The documents every run recorded, one side file per run: a killed run's file may end
    in a half-written line, which a later run must not append to (it would glue two lines)."""
    return [t for side in sorted(side_dir.glob("committed-*.jsonl")) for t in _recorded(side)]


def _pq_codebooks(store_dir: Path) -> int:
    return sql(store_dir, "SELECT COUNT(*) FROM codebooks WHERE codec = 'pq64'")[0][0]


def _check_store(store_dir: Path, docs: list[str], floor: float) -> None:
    """Reopens cleanly (no damage warning), every committed document present and served (by
    its text and by a chunk of it) with vectors close to a fresh encoding, verify() clean."""
    enc = FakeEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        with FingerprintStore(store_dir) as s:
            assert s.verify() == []
            assert len(s) >= len(docs)
            got = s.lookup(docs, enc.cache_id)
            missing = [t[:30] for t, g in zip(docs, got, strict=True) if g is None]
            assert not missing, f"{len(missing)} committed documents lost: {missing[:3]}"
            refs = enc.encode_texts(docs)
            chunks = [words_slice(d, 3, 28) for d in docs]
            sliced = s.lookup(chunks, enc.cache_id)
            wants = [expected_slice(r, 3, c) for r, c in zip(refs, chunks, strict=True)]
            if floor >= 1.0:
                assert all(same_exactly(g, r) for g, r in zip(got, refs, strict=True))
                assert all(same_exactly(g, w) for g, w in zip(sliced, wants, strict=True))
            else:
                bad = [t[:30] for t, g, r in zip(docs, got, refs, strict=True)
                       if not close_enough(g, r, floor)]  # fmt: skip
                assert not bad, f"{len(bad)} documents decode badly: {bad[:3]}"
                assert all(close_enough(g, w, floor) for g, w in zip(sliced, wants, strict=True))
    assert _pq_codebooks(store_dir) <= 1


def _assert_staged_blocks_fit_badly(store_dir: Path) -> None:
    """Every block still in float16 after training is one the fidelity guard refused (its
    vectors fit the codebook more than ``GUARD_MARGIN`` worse than the training sample), not
    one a killed training left behind."""
    from semtoken_rag.store.codebooks import GUARD_MARGIN, Codebook, runtime_codec
    from semtoken_rag.store.codecs import row_cosines

    ((cid, factory, state, digest, cos),) = sql(
        store_dir,
        "SELECT id, factory, state, sha256, train_cos FROM codebooks WHERE codec = 'pq64'",
    )
    pq = runtime_codec(Codebook(cid, "pq64", 32, factory, state, digest, cos))
    staged = sql(
        store_dir,
        "SELECT b.n_words, b.codes FROM blocks b JOIN codebooks c ON c.id = b.codebook "
        "WHERE c.codec = 'float16'",
    )
    total = sql(store_dir, "SELECT value FROM meta WHERE name = 'words'")[0][0]
    assert sum(n for n, _ in staged) <= max(128, total // 50)  # a few outliers, not a backlog
    for n, codes in staged:
        v = np.frombuffer(codes, "<f2").astype(np.float32).reshape(n, 32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        assert row_cosines(pq.decode(pq.encode(v)), v).mean() < cos - GUARD_MARGIN


@pytest.mark.slow
@pytest.mark.parametrize(("codec", "kills"), [("float32", 10), ("pq64", 12)])
def test_sigkill_during_ingestion_never_loses_or_corrupts(tmp_path, codec, kills):
    """Kills at random points (12 with pq64, so that the codec is trained, and the staged
    blocks re-encoded, in one of the killed runs' transactions, about the fourth, and later
    runs write to the trained store; 10 with float32, whose write path has no such step)."""
    script = _script(tmp_path, "writer.py", WRITER)
    store_dir = tmp_path / "store"
    rng = random.Random(1234)
    floor = 1.0 if codec == "float32" else 0.8
    trained_in_run = None
    for run in range(kills):
        side = tmp_path / f"committed-{run}.jsonl"
        proc = subprocess.Popen(
            [sys.executable, str(script), str(ROOT), str(store_dir), str(side), str(run), codec,
             str(CRASH_PQ_TRAIN_MIN)],
            stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not _recorded(side) and proc.poll() is None:  # this run's first commit
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        _check_store(store_dir, _committed(tmp_path), floor)
        if trained_in_run is None and codec == "pq64" and _pq_codebooks(store_dir):
            trained_in_run = run
    assert len(_committed(tmp_path)) > kills
    with FingerprintStore(store_dir) as s:
        assert s.stats().trained and s.verify() == []
    if codec == "pq64":
        assert trained_in_run is not None  # in one of the killed runs
        assert _pq_codebooks(store_dir) == 1  # trained exactly once
        _assert_staged_blocks_fit_badly(store_dir)


@pytest.mark.slow
def test_two_processes_writing_overlapping_sets(tmp_path):
    script = _script(tmp_path, "comp.py", COMPRESSOR)
    store_dir = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(ROOT), str(store_dir), str(lo), str(hi)],
            stderr=subprocess.PIPE,
        )
        for lo, hi in ((0, 300), (150, 450))
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()
    docs = long_texts(450, "shared", words=40)
    _check_store(store_dir, docs, 0.8)
    with FingerprintStore(store_dir) as s:
        st = s.stats()
        assert st.documents == 2 * 450 and st.trained  # the documents and the chunks put
        assert _pq_codebooks(store_dir) == 1  # trained once


# -- damaged files ---------------------------------------------------------------------------------
def _filled(store_dir: Path, n: int = 100) -> list[str]:
    docs = long_texts(n, "f", words=120)
    with FingerprintStore(store_dir, codec="float32") as s:
        fill(s, FakeEncoder(), docs)
    return docs


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "zero-filled"])
def test_damaged_database_is_quarantined_and_rebuilt(tmp_path, how):
    _filled(tmp_path)
    db_file = tmp_path / DB_NAME
    size = db_file.stat().st_size
    if how == "garbage":
        db_file.write_bytes(os.urandom(max(4096, size // 2)))
    elif how == "truncated":
        os.truncate(db_file, size // 3)
    elif how == "empty":
        os.truncate(db_file, 0)
    else:
        db_file.write_bytes(bytes(size))
    enc = FakeEncoder()
    if how == "empty":  # an empty file is an empty database: a new store, nothing to warn about
        with warnings.catch_warnings():
            warnings.simplefilter("error", StoreWarning)
            s = FingerprintStore(tmp_path)
    else:
        with pytest.warns(StoreWarning, match="damaged"):
            s = FingerprintStore(tmp_path)
    with s:
        assert len(s) == 0 and s.verify() == []
        assert fill(s, enc, long_texts(2, "after")).encoded == 2  # it works again
        assert all(s.lookup(long_texts(2, "after"), enc.cache_id))
    if how != "empty":
        quarantined = list(tmp_path.glob("quarantine-*/*"))
        assert DB_NAME in {p.name for p in quarantined}
    with warnings.catch_warnings():  # the rebuilt store opens cleanly
        warnings.simplefilter("error", StoreWarning)
        with FingerprintStore(tmp_path) as s:
            assert len(s) == 2
