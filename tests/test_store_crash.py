"""FingerprintStore under concurrent processes, SIGKILL during ingestion (codec training
included) and during migration, and damaged files."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag.errors import StoreError
from semtoken_rag.fingerprints import fingerprint_key
from semtoken_rag.store import FingerprintStore, StoreWarning
from semtoken_rag.store.store import DB_NAME
from tests.fakes import FakeEncoder
from tests.store_helpers import close_enough, items, same_exactly, texts, write_v1_store

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import json, random, sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore
    from tests.fakes import FakeEncoder
    from tests.store_helpers import SMALL_PQ

    store_dir, side, seed, codec = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    enc, rng = FakeEncoder(), random.Random(seed)
    words = "alpha beta gamma delta river stone ledger clause party notice".split()
    spec = SMALL_PQ if codec == "pq64" else codec
    with FingerprintStore(store_dir, codec=spec) as store, open(side, "a", encoding="utf-8") as fh:
        for batch in range(10**6):
            texts = [
                f"run {seed} batch {batch} item {j}: "
                + " ".join(rng.choice(words) for _ in range(rng.randint(5, 120)))
                for j in range(rng.randint(1, 12))
            ]
            fps = enc.encode_texts(texts)
            store.put_many([(fingerprint_key(t, enc.cache_id), fp) for t, fp in zip(texts, fps)])
            # Only after put_many returned (committed) are the texts recorded as committed.
            fh.write("".join(json.dumps(t) + "\\n" for t in texts))
            fh.flush()
            if batch % 4 == 3:
                store.search(fps[0].vectors[:1], k=2)
                store.get_many([fingerprint_key(texts[0], enc.cache_id)])
                store.flush()  # buffered LRU refreshes written: a kill may land inside it
    """
)

COMPRESSOR = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.store import FingerprintStore
    from tests.fakes import FakeEncoder, WhitespaceCounter
    from tests.store_helpers import SMALL_PQ

    store_dir, lo, hi = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    texts = [f"Shared chunk {i} about the river and item {i * 3}. It ends." for i in range(lo, hi)]
    with FingerprintStore(store_dir, codec=SMALL_PQ) as store:
        comp = Compressor(
            SemTokenConfig(), encoder=FakeEncoder(), store=store, counter=WhitespaceCounter()
        )
        for i in range(0, len(texts), 7):
            comp.compress(texts[i : i + 7], "river")
        store.add_texts(texts, FakeEncoder(), batch_size=5, progress=False)
    """
)

MIGRATOR = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag.store import migrate
    from tests.store_helpers import SMALL_PQ

    print("start", flush=True)
    migrate(sys.argv[2], SMALL_PQ, batch_rows=int(sys.argv[3]))
    print("done", flush=True)
    """
)


def _script(tmp_path: Path, name: str, body: str) -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _committed(side: Path) -> list[str]:
    if not side.exists():
        return []
    lines = side.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines[:-1] if line]  # last piece may be half-written


def _check_store(store_dir: Path, chunk_texts: list[str], floor: float) -> None:
    """Reopens cleanly (no damage warning), every committed text intact, nothing inconsistent."""
    enc = FakeEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        with FingerprintStore(store_dir) as s:
            assert s.verify() == []
            keys = [fingerprint_key(t, enc.cache_id) for t in chunk_texts]
            got = s.get_many(keys)
            missing = [t[:30] for t, g in zip(chunk_texts, got, strict=True) if g is None]
            assert not missing, f"{len(missing)} committed entries lost: {missing[:3]}"
            refs = enc.encode_texts(chunk_texts)
            if floor >= 1.0:
                assert all(same_exactly(g, r) for g, r in zip(got, refs, strict=True))
            else:
                bad = [
                    t[:30]
                    for t, g, r in zip(chunk_texts, got, refs)
                    if not close_enough(g, r, floor)
                ]
                assert not bad, f"{len(bad)} entries decode badly: {bad[:3]}"
            if chunk_texts:  # the in-memory search index matches the database
                s.search(got[-1].vectors[:1], k=1)
                assert s._index.ntotal == s.stats().vectors


@pytest.mark.parametrize("codec", ["float32", "pq64"])
def test_sigkill_during_ingestion_never_loses_or_corrupts(tmp_path, codec):
    """20 kills at random points; with pq64 the codec is trained (and the staged entries
    re-encoded) in one of the killed runs' transactions."""
    script = _script(tmp_path, "writer.py", WRITER)
    store_dir, side = tmp_path / "store", tmp_path / "committed.jsonl"
    rng = random.Random(1234)
    floor = 1.0 if codec == "float32" else 0.8
    for run in range(20):
        before = len(_committed(side))
        proc = subprocess.Popen(
            [sys.executable, str(script), str(ROOT), str(store_dir), str(side), str(run), codec],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while len(_committed(side)) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        _check_store(store_dir, _committed(side), floor)
    assert len(_committed(side)) > 20
    with FingerprintStore(store_dir) as s:
        assert s.stats().trained
        if codec == "pq64":  # nothing left half re-encoded: float16 rows are guard refusals
            _assert_staged_rows_fit_badly(s)


def _assert_staged_rows_fit_badly(s: FingerprintStore) -> None:
    """Every entry still in float16 after training is one the fidelity guard refused (its
    vectors fit the codebook more than ``GUARD_MARGIN`` worse than the training sample), not
    one a killed training left behind."""
    from semtoken_rag.store.codebooks import GUARD_MARGIN, ROW_COLUMNS, Entry
    from semtoken_rag.store.codecs import mean_cosine

    books = s._books.books()
    pq = next(b for b in books if b.codec == "pq64")
    staged = [b.id for b in books if b.codec != "pq64"]
    rows = [
        Entry.from_row(r)
        for cid in staged
        for r in s._live().execute(f"SELECT {ROW_COLUMNS} FROM entries WHERE codebook = ?", (cid,))
    ]
    assert len(rows) <= max(1, s.stats().entries // 100)  # a few outliers, not a backlog
    decoded, damaged = s._books.decode_rows(s._live(), rows)
    assert not damaged
    codec = s._books.codec(pq.id)
    for fp in decoded.values():
        fit = mean_cosine(codec.decode(codec.encode(fp.vectors)), fp.vectors)
        assert fit < pq.train_cos - GUARD_MARGIN


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
    chunk_texts = [
        f"Shared chunk {i} about the river and item {i * 3}. It ends." for i in range(450)
    ]
    _check_store(store_dir, chunk_texts, 0.8)
    with FingerprintStore(store_dir) as s:
        st = s.stats()
        assert st.entries == 450 and st.trained
        assert len([b for b in s._books.books() if b.codec == "pq64"]) == 1  # trained once


def test_sigkill_during_migration_loses_nothing(tmp_path):
    """A format-1 store migrated while being killed at random moments: after every kill the
    store is either still format 1 (a rerun resumes) or complete in format 2."""
    its = items(FakeEncoder(), texts(600))
    store_dir = tmp_path / "store"
    write_v1_store(store_dir, its)
    script = _script(tmp_path, "migrate.py", MIGRATOR)
    # How long an uninterrupted migration takes here (on a copy, from the moment the script
    # has imported everything): the kills land inside it whatever the machine's speed.
    calib = tmp_path / "calib"
    shutil.copytree(store_dir, calib)
    cmd = [sys.executable, str(script), str(ROOT)]
    with subprocess.Popen([*cmd, str(calib), "16"], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == b"start\n"
        t0 = time.perf_counter()
        assert proc.wait(timeout=600) == 0
    whole = time.perf_counter() - t0
    rng = random.Random(7)
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen(
            [*cmd, str(store_dir), "16"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        proc.stdout.readline()  # "start": imports done, the migration begins
        time.sleep(rng.uniform(0.05, 0.9) * whole)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        try:
            with FingerprintStore(store_dir) as s:
                assert s.stats().entries == len(its)
            break  # migrated: format 2 and complete
        except StoreError as exc:
            assert "format 1" in str(exc)  # still the old store, untouched
    else:
        res = subprocess.run(
            [sys.executable, str(script), str(ROOT), str(store_dir), "16"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stderr
    assert kills >= 1
    _check_store(store_dir, texts(600), 0.8)
    assert not (store_dir / "vectors.faiss").exists()
    with FingerprintStore(store_dir) as s:
        assert s.codec.name == "pq64" and s.stats().trained


def _filled(store_dir: Path, n: int = 200) -> list[str]:
    chunk_texts = [f"Entry {i} with several words about item {i} and more." * 3 for i in range(n)]
    with FingerprintStore(store_dir, codec="float32") as s:
        s.add_texts(chunk_texts, FakeEncoder(), progress=False)
    return chunk_texts


def _corrupt(path: Path, how: str) -> None:
    if how == "garbage":
        path.write_bytes(os.urandom(max(4096, path.stat().st_size // 2)))
    else:
        os.truncate(path, path.stat().st_size // 3)


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_damaged_database_is_quarantined_and_rebuilt(tmp_path, how):
    _filled(tmp_path)
    _corrupt(tmp_path / DB_NAME, how)
    with pytest.warns(StoreWarning, match="damaged"), FingerprintStore(tmp_path) as s:
        assert s.stats().entries == 0 and s.verify() == []
        assert s.add_texts(["after the repair it works again"], FakeEncoder(), progress=False) == 1
    quarantined = list(tmp_path.glob("quarantine-*/*"))
    assert DB_NAME in {p.name for p in quarantined}


def test_format_1_index_file_is_not_used_and_removed(tmp_path):
    chunk_texts = _filled(tmp_path, 20)
    (tmp_path / "vectors.faiss").write_bytes(b"SEMTKIDX stale format-1 index")
    (tmp_path / "vectors.faiss.tmp-1-2").write_bytes(b"half-written")
    with FingerprintStore(tmp_path) as s:
        _, hits = s.search(np.ones(32, np.float32) / np.sqrt(32), k=1)
        assert s._index.ntotal == s.stats().vectors and hits[0][0] is not None
    assert not list(tmp_path.glob("vectors.faiss*"))
    _check_store(tmp_path, chunk_texts, 1.0)
