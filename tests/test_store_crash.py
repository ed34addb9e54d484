"""FingerprintStore under concurrent processes, SIGKILL during ingestion, and damaged files."""

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

from semtoken_rag.fingerprints import fingerprint_key
from semtoken_rag.store import FingerprintStore, StoreWarning
from semtoken_rag.store.store import DB_NAME, INDEX_NAME
from tests.fakes import FakeEncoder

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import json, random, sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore
    from tests.fakes import FakeEncoder

    store_dir, side, seed = sys.argv[2], sys.argv[3], int(sys.argv[4])
    enc, rng = FakeEncoder(), random.Random(seed)
    words = "alpha beta gamma delta river stone ledger clause party notice".split()
    with FingerprintStore(store_dir) as store, open(side, "a", encoding="utf-8") as fh:
        for batch in range(10**6):
            texts = [
                f"run {seed} batch {batch} item {j}: "
                + " ".join(rng.choice(words) for _ in range(rng.randint(5, 400)))
                for j in range(rng.randint(1, 12))
            ]
            fps = enc.encode_texts(texts)
            store.put_many([(fingerprint_key(t, enc.cache_id), fp) for t, fp in zip(texts, fps)])
            # Only after put_many returned (committed) are the texts recorded as committed.
            fh.write("".join(json.dumps(t) + "\\n" for t in texts))
            fh.flush()
            if batch % 4 == 3:
                store.search(fps[0].vectors[:1], k=2)
                store.flush()  # atomic index write: a kill may land inside it
    """
)

COMPRESSOR = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.store import FingerprintStore
    from tests.fakes import FakeEncoder, WhitespaceCounter

    store_dir, lo, hi = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    texts = [f"Shared chunk {i} about the river and item {i * 3}. It ends." for i in range(lo, hi)]
    with FingerprintStore(store_dir) as store:
        comp = Compressor(
            SemTokenConfig(), encoder=FakeEncoder(), store=store, counter=WhitespaceCounter()
        )
        for i in range(0, len(texts), 7):
            comp.compress(texts[i : i + 7], "river")
        store.add_texts(texts, FakeEncoder(), batch_size=5, progress=False)
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


def _check_store(store_dir: Path, texts: list[str]) -> None:
    """Reopens cleanly (no damage warning), every committed text intact, nothing inconsistent."""
    enc = FakeEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        with FingerprintStore(store_dir) as s:
            assert s.verify() == []
            keys = [fingerprint_key(t, enc.cache_id) for t in texts]
            got = s.get_many(keys)
            missing = [t[:30] for t, g in zip(texts, got, strict=False) if g is None]
            assert not missing, f"{len(missing)} committed entries lost: {missing[:3]}"
            for g, ref in zip(got, enc.encode_texts(texts), strict=False):
                assert g.vectors.tobytes() == ref.vectors.tobytes()
                assert g.word_spans.tobytes() == ref.word_spans.tobytes()
            if texts:  # the search index (loaded from file or rebuilt) matches the database
                s.search(got[-1].vectors[:1], k=1)
                assert s._index.ntotal == s.stats().vectors
    assert not list(store_dir.glob("*.tmp-*"))


def test_sigkill_during_ingestion_never_loses_or_corrupts(tmp_path):
    script = _script(tmp_path, "writer.py", WRITER)
    store_dir, side = tmp_path / "store", tmp_path / "committed.jsonl"
    rng = random.Random(1234)
    for run in range(20):
        before = len(_committed(side))
        proc = subprocess.Popen(
            [sys.executable, str(script), str(ROOT), str(store_dir), str(side), str(run)],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while len(_committed(side)) <= before and proc.poll() is None:
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        _check_store(store_dir, _committed(side))
    assert len(_committed(side)) > 20


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
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    texts = [f"Shared chunk {i} about the river and item {i * 3}. It ends." for i in range(450)]
    _check_store(store_dir, texts)
    with FingerprintStore(store_dir) as s:
        assert s.stats().entries == 450


def _filled(store_dir: Path, n: int = 200) -> list[str]:
    texts = [f"Entry {i} with several words about item {i} and more." * 3 for i in range(n)]
    with FingerprintStore(store_dir) as s:
        s.add_texts(texts, FakeEncoder(), progress=False)
        s.search(np.ones(32, np.float32) / np.sqrt(32), k=1)  # build + persist the index
    return texts


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
        texts = ["after the repair it works again"]
        assert s.add_texts(texts, FakeEncoder(), progress=False) == 1
    quarantined = list(tmp_path.glob("quarantine-*/*"))
    assert DB_NAME in {p.name for p in quarantined}


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_damaged_index_is_quarantined_and_rebuilt_from_db(tmp_path, how):
    texts = _filled(tmp_path)
    _corrupt(tmp_path / INDEX_NAME, how)
    with pytest.warns(StoreWarning, match="search index"), FingerprintStore(tmp_path) as s:
        assert s.stats().entries == len(texts)  # the database is intact: nothing lost
        fp = s.get_many([fingerprint_key(texts[7], FakeEncoder().cache_id)])[0]
        _, hits = s.search(fp.vectors[1], k=1)  # word "7" next to "Entry": unique context
        assert hits[0][0] == (fingerprint_key(texts[7], FakeEncoder().cache_id), 1)
    assert list(tmp_path.glob(f"quarantine-*/{INDEX_NAME}"))
    _check_store(tmp_path, texts)  # the rebuilt index file is valid on the next open


def test_index_file_from_another_state_is_not_used(tmp_path):
    texts = _filled(tmp_path, 20)
    saved = (tmp_path / INDEX_NAME).read_bytes()
    with FingerprintStore(tmp_path) as s:
        s.add_texts(
            ["a newer chunk that the old index does not have"], FakeEncoder(), progress=False
        )
    (tmp_path / INDEX_NAME).write_bytes(saved)  # as if the index write was lost in a crash
    with FingerprintStore(tmp_path) as s:
        s.search(np.ones(32, np.float32) / np.sqrt(32), k=1)
        assert s._index.ntotal == s.stats().vectors
    assert len(texts) == 20
