"""Hostile inputs to the store (issue 11 point 5, issue 13 "bad input"): read-only directories,
damaged databases and codebooks, truncated WAL, future formats, inspection that must not change
anything.  Every case ends in a typed error or a documented safe result."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag.errors import StoreError
from semtoken_rag.store import FingerprintStore, StoreDamagedError, StoreWarning
from semtoken_rag.store.gpu import GPU_MAX_K, faiss_build, resolve_use_gpu
from semtoken_rag.store.store import DB_NAME
from tests.fakes import FakeEncoder
from tests.store_helpers import (
    ROOT,
    SMALL_PQ,
    close_enough,
    items,
    run_without_write_permission,
    texts,
)


def _filled(path: Path, n: int = 200, codec=SMALL_PQ) -> list:
    its = items(FakeEncoder(), texts(n))
    with FingerprintStore(path, codec=codec) as s:
        for lo in range(0, n, 50):
            s.put_many(its[lo : lo + 50])
    return its


def _digest(path: Path) -> dict[str, str]:
    """Name -> sha256 of every file under ``path`` (to prove nothing changed)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(max(4096, path.stat().st_size // 2)))


def _info(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "semtoken_rag.cli.main", "store", "info", str(path), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


# -- read-only ---------------------------------------------------------------------------
def test_read_only_open_serves_lookups_and_touches_nothing(tmp_path):
    its = _filled(tmp_path)
    (tmp_path / ".lock").unlink()
    before = _digest(tmp_path)
    with FingerprintStore(tmp_path, read_only=True) as s:
        got = s.get_many([k for k, _ in its])
        assert all(close_enough(g, fp, 0.8) for g, (_, fp) in zip(got, its, strict=True))
        s.put_many(its[:1])  # documented: stores nothing, logs once
        s.put_many(items(FakeEncoder(), ["a chunk nobody stored"]))
        assert s.stats().entries == len(its) and s.verify() == []
        _, hits = s.search(got[0].vectors[:1], k=1)
        assert hits[0][0] == (its[0][0], 0)
    assert not (tmp_path / ".lock").exists()
    after = _digest(tmp_path)
    assert after[DB_NAME] == before[DB_NAME] and not list(tmp_path.glob("quarantine-*"))


@pytest.mark.parametrize("with_wal", [False, True])
def test_unwritable_directory(tmp_path, with_wal):
    """Another user's store: a writable open is a StoreError naming read_only=True; a
    read-only open serves lookups (also with un-checkpointed data in the WAL, when SQLite's
    -shm exists)."""
    its = _filled(tmp_path)
    if with_wal:  # a live writer leaves -wal/-shm behind (killed: never checkpointed)
        code = textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {str(ROOT)!r})
            from semtoken_rag.store import FingerprintStore
            from tests.fakes import FakeEncoder
            from tests.store_helpers import items, texts
            s = FingerprintStore(sys.argv[1])
            s.put_many(items(FakeEncoder(), texts(5, "wal")))
            os.kill(os.getpid(), 9)
            """
        )
        subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, timeout=120)
        assert (tmp_path / (DB_NAME + "-wal")).stat().st_size > 0
    else:
        assert not (tmp_path / (DB_NAME + "-wal")).exists()
    want = [k for k, _ in its] + [k for k, _ in items(FakeEncoder(), texts(5, "wal"))]
    probe = textwrap.dedent(
        f"""
        import json, sys
        from semtoken_rag.errors import StoreError
        from semtoken_rag.store import FingerprintStore
        out = {{}}
        try:
            FingerprintStore(sys.argv[1])
        except StoreError as exc:
            out["writable"] = str(exc)
        with FingerprintStore(sys.argv[1], read_only=True) as s:
            got = s.get_many({json.dumps(want)})
            out["hits"] = sum(g is not None for g in got)
            out["entries"] = s.stats().entries
        print(json.dumps(out))
        """
    )
    res = run_without_write_permission(tmp_path, probe)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "not writable" in out["writable"] and "read_only=True" in out["writable"]
    expected = len(its) + (5 if with_wal else 0)
    assert out["hits"] == expected == out["entries"]


def test_unwritable_directory_with_wal_but_no_shm_is_a_typed_error(tmp_path):
    its = _filled(tmp_path, 20, codec="float16")
    conn = sqlite3.connect(tmp_path / DB_NAME)  # keeps a WAL alive while we copy it
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE entries SET last_used = 1")
    conn.commit()
    snap = tmp_path / "snap"
    snap.mkdir()
    for name in (DB_NAME, DB_NAME + "-wal"):
        (snap / name).write_bytes((tmp_path / name).read_bytes())
    conn.close()
    res = run_without_write_permission(
        snap,
        "import sys\nfrom semtoken_rag.errors import StoreError\n"
        "from semtoken_rag.store import FingerprintStore\n"
        "try:\n    FingerprintStore(sys.argv[1], read_only=True)\n"
        "except StoreError as exc:\n    print('StoreError:', exc)\n",
    )
    assert "StoreError:" in res.stdout, res.stderr
    assert "write-ahead log" in res.stdout or "read-only" in res.stdout
    assert len(its) == 20


# -- damage with and without verification ------------------------------------------------
def test_damage_without_verify_on_open_is_typed(tmp_path):
    its = _filled(tmp_path, 200, codec="float32")
    size = (tmp_path / DB_NAME).stat().st_size
    with open(tmp_path / DB_NAME, "r+b") as fh:  # smash the second half: entry pages only
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(os.urandom(size - size // 2 // 4096 * 4096))
    with FingerprintStore(tmp_path, verify_on_open=False) as s:
        with pytest.raises(StoreError, match="search failed"):
            s.search(np.ones(32, np.float32) / np.sqrt(32), k=1)
        problems = s.verify()
        assert problems and all(isinstance(p, str) for p in problems)
        with pytest.warns(StoreWarning):
            got = s.get_many([k for k, _ in its])
        assert all(g is None or close_enough(g, fp, 0.999) for g, (_, fp) in zip(got, its))
        with pytest.warns(StoreWarning):
            s.put_many(items(FakeEncoder(), ["stored into a damaged file?"]))
    with pytest.warns(StoreWarning, match="damaged"), FingerprintStore(tmp_path) as s:
        assert s.stats().entries == 0  # verified open: quarantined, started again
    assert list(tmp_path.glob(f"quarantine-*/{DB_NAME}"))


@pytest.mark.parametrize("how", ["garbage", "truncated", "entry pages"])
def test_store_info_on_damaged_store_changes_nothing(tmp_path, how):
    _filled(tmp_path, 100, codec="float32")
    db_file = tmp_path / DB_NAME
    if how == "garbage":
        _garbage(db_file)
    elif how == "truncated":
        os.truncate(db_file, db_file.stat().st_size // 3)
    else:  # the schema and meta intact, rows smashed: found by quick_check
        half = db_file.stat().st_size // 2 // 4096 * 4096
        with open(db_file, "r+b") as fh:
            fh.seek(half)
            fh.write(os.urandom(db_file.stat().st_size - half))
    before = _digest(tmp_path)
    for extra in ((), ("--check",), ("--check", "--json")):
        res = _info(tmp_path, *extra)
        assert res.returncode != 0, res.stdout
        assert "damaged" in (res.stdout + res.stderr).lower()
        assert "check            ok" not in res.stdout and "Traceback" not in res.stderr
    assert _digest(tmp_path) == before and not list(tmp_path.glob("quarantine-*"))


def test_store_info_check_ok_only_when_clean(tmp_path):
    its = _filled(tmp_path, 60, codec="float16")
    res = _info(tmp_path, "--check")
    assert res.returncode == 0 and "check            ok" in res.stdout, res.stderr
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # one row's bytes damaged
        vec = bytearray(conn.execute("SELECT vectors FROM entries LIMIT 1").fetchone()[0])
        vec[0] ^= 0xFF
        conn.execute("UPDATE entries SET vectors=? WHERE id=1", (bytes(vec),))
    before = _digest(tmp_path)
    res = _info(tmp_path, "--check")
    assert (
        res.returncode == 1
        and "1 problems" in res.stdout
        and "check            ok" not in res.stdout
    )
    assert _digest(tmp_path)[DB_NAME] == before[DB_NAME] and len(its) == 60


@pytest.mark.parametrize("how", ["digest", "garbage-with-digest", "missing"])
def test_damaged_codebook_is_quarantined(tmp_path, how):
    its = _filled(tmp_path)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        cid, codec, dim, factory, state = conn.execute(
            "SELECT id, codec, dim, factory, state FROM codebooks WHERE codec='pq64'"
        ).fetchone()
        if how == "digest":  # one byte of the trained state flipped
            bad = bytearray(state)
            bad[len(bad) // 2] ^= 0x01
            conn.execute("UPDATE codebooks SET state=? WHERE id=?", (bytes(bad), cid))
        elif how == "garbage-with-digest":  # a consistent digest over bytes FAISS rejects
            from semtoken_rag.store.codecs import Codebook

            junk = os.urandom(len(state))
            sha = Codebook.digest(codec, dim, factory, junk)
            conn.execute("UPDATE codebooks SET state=?, sha256=? WHERE id=?", (junk, sha, cid))
        else:
            conn.execute("DELETE FROM codebooks WHERE id=?", (cid,))
    if how == "missing":  # rows naming a codebook that does not exist: misses, then removed
        with (
            FingerprintStore(tmp_path, read_only=True) as s,
            pytest.warns(StoreWarning, match="left in place"),
        ):
            assert all(g is None for g in s.get_many([k for k, _ in its[-5:]]))
        with FingerprintStore(tmp_path) as s, pytest.warns(StoreWarning, match="checksum"):
            assert all(g is None for g in s.get_many([k for k, _ in its[-5:]]))
        return
    with pytest.raises(StoreDamagedError, match="damaged"):
        FingerprintStore(tmp_path, read_only=True)
    with pytest.warns(StoreWarning, match="damaged"), FingerprintStore(tmp_path) as s:
        assert s.stats().entries == 0 and s.verify() == []
    assert list(tmp_path.glob(f"quarantine-*/{DB_NAME}"))


def test_truncated_wal_keeps_a_consistent_prefix(tmp_path):
    """A WAL cut mid-frame (disk full, a copy interrupted): SQLite ignores the torn frames;
    the store opens, serves every entry of the transactions that survive, verify() is clean."""
    base = _filled(tmp_path, 40, codec="float16")
    code = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from semtoken_rag.store import FingerprintStore
        from tests.fakes import FakeEncoder
        from tests.store_helpers import items, texts
        s = FingerprintStore(sys.argv[1])
        for b in range(6):
            s.put_many(items(FakeEncoder(), texts(10, f"w{{b}}-")))
        os.kill(os.getpid(), 9)
        """
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, timeout=120)
    wal = tmp_path / (DB_NAME + "-wal")
    os.truncate(wal, wal.stat().st_size * 2 // 3 + 7)  # not on a frame boundary
    with FingerprintStore(tmp_path) as s:
        assert s.verify() == []
        got = s.get_many([k for k, _ in base])
        assert all(close_enough(g, fp, 0.9999) for g, (_, fp) in zip(got, base, strict=True))
        batches = [
            sum(
                g is not None
                for g in s.get_many([k for k, _ in items(FakeEncoder(), texts(10, f"w{b}-"))])
            )
            for b in range(6)
        ]
        assert all(n in (0, 10) for n in batches)  # whole transactions or nothing
        assert batches == sorted(batches, reverse=True)  # a prefix of the commits survives


def test_future_format_and_unknown_codec_leave_the_store_alone(tmp_path):
    _filled(tmp_path, 10, codec="float16")
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = 3 WHERE name = 'format_version'")
    before = _digest(tmp_path)
    for kw in ({}, {"read_only": True}):
        with pytest.raises(StoreError, match="format 3, written by a newer"):
            FingerprintStore(tmp_path, **kw)
    res = _info(tmp_path)
    assert res.returncode == 2 and "newer" in res.stderr and "Traceback" not in res.stderr
    assert _digest(tmp_path)[DB_NAME] == before[DB_NAME]


def test_format_1_store_asks_for_migration(tmp_path):
    from tests.store_helpers import write_v1_store

    write_v1_store(tmp_path, items(FakeEncoder(), texts(5)))
    for kw in ({}, {"read_only": True}):
        with pytest.raises(StoreError, match=r"format 1 .*semtoken-rag store migrate"):
            FingerprintStore(tmp_path, **kw)
    res = _info(tmp_path)
    assert res.returncode == 2 and "store migrate" in res.stderr


def test_codec_that_cannot_train_yet_stays_float16_without_faiss_errors(tmp_path):
    """Fewer vectors than the codec needs: documented fallback (float16), never a FAISS crash;
    a codec spec below FAISS's minimum is refused up front."""
    its = items(FakeEncoder(), texts(10))  # 140 vectors < 256 centroids
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        s.put_many(its)
        st = s.stats()
        assert not st.trained and st.staged_entries == 10
    with pytest.raises(StoreError, match="train_min"):
        SMALL_PQ.with_options(train_min=10)
    from semtoken_rag.store.codecs import train

    with pytest.raises(StoreError, match="needs 1024 vectors"):
        train(SMALL_PQ, np.ones((100, 32), np.float32))


def test_vectors_the_codebook_does_not_fit_stay_float16(tmp_path):
    """Another encoder's vectors of the same dimension: the fidelity guard keeps them in
    float16 instead of degrading them with a codebook trained on other statistics."""
    rng = np.random.default_rng(0)

    def fps(n: int, lo: int, hi: int):
        from semtoken_rag.fingerprints import ChunkFingerprints

        out = []
        for i in range(n):
            v = np.zeros((20, 32), np.float32)
            v[:, lo:hi] = rng.standard_normal((20, hi - lo))
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            spans = np.stack([np.arange(20) * 4, np.arange(20) * 4 + 3], axis=1)
            out.append((f"{lo}-{i}", ChunkFingerprints(v, spans)))
        return out

    trained_on = fps(80, 0, 8)  # 1,600 vectors living in dims 0-7
    other = fps(5, 8, 32)  # another "encoder": dims 8-31
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        s.put_many(trained_on)
        assert s.stats().trained
        s.put_many(other)
        assert s.stats().staged_entries == 5
        got = s.get_many([k for k, _ in other])
        assert all(close_enough(g, fp, 0.999) for g, (_, fp) in zip(got, other, strict=True))
        # One batch mixing both: the guard judges each entry, not the batch.
        fitting, misfits = fps(6, 0, 8), fps(3, 8, 32)
        s.put_many([(f"mixed-{k}", fp) for k, fp in [*fitting, *misfits]])
        assert s.stats().staged_entries == 5 + 3


def test_batched_encoding_stores_the_same_codes_as_entry_by_entry(tmp_path):
    """``put_many`` encodes a batch in one FAISS call; each entry's stored codes must be those
    it gets alone (same codebook: training is deterministic on the same sample)."""
    enc = FakeEncoder()
    first, later = items(enc, texts(120)), items(enc, texts(30, "later"))
    batched, single = tmp_path / "batched", tmp_path / "single"
    for where in (batched, single):
        with FingerprintStore(where, codec=SMALL_PQ) as s:
            s.put_many(first)
            assert s.stats().trained
            if where == batched:
                s.put_many(later)
            else:
                for it in later:
                    s.put_many([it])
    with FingerprintStore(batched) as a, FingerprintStore(single) as b:
        keys = [k for k, _ in later]
        for x, y in zip(a.get_many(keys), b.get_many(keys), strict=True):
            assert x is not None and y is not None
            np.testing.assert_array_equal(x.vectors, y.vectors)
            np.testing.assert_array_equal(x.word_spans, y.word_spans)


# -- FAISS build and GPU paths (callable without a GPU) ----------------------------------
def test_faiss_build_is_reported_and_always_fails_clearly_without_gpu():
    build = faiss_build()
    assert build.version and build.module_file and build.describe().startswith("faiss ")
    if build.gpu_usable:
        pytest.skip("a GPU FAISS build is active here: covered by tests/test_gpu.py")
    assert resolve_use_gpu("auto") is False and resolve_use_gpu("never") is False
    with pytest.raises(StoreError, match=r"use_gpu='always' but faiss .*pip"):
        FingerprintStore(use_gpu="always")
    from semtoken_rag.store import SpanIndex

    with pytest.raises(StoreError, match="use_gpu='always'"):
        SpanIndex(8, use_gpu="always")


def test_search_with_k_beyond_the_gpu_limit(tmp_path):
    its = _filled(tmp_path, 200, codec="float16")
    with FingerprintStore(tmp_path, use_gpu="auto") as s:
        total = s.stats().vectors
        assert total > GPU_MAX_K
        scores, hits = s.search(its[0][1].vectors[:2], k=GPU_MAX_K + 100)
        assert scores.shape == (2, GPU_MAX_K + 100) and all(h is not None for h in hits[0])
        assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_sigkill_leaves_no_lock_that_blocks(tmp_path):
    """A writer killed while holding the file lock: the OS releases it; the next open works."""
    code = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from filelock import FileLock
        from semtoken_rag.store import FingerprintStore
        FingerprintStore(sys.argv[1]).close()
        FileLock(sys.argv[1] + "/.lock").acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    t0 = time.monotonic()
    with FingerprintStore(tmp_path, lock_timeout=10) as s:
        s.put_many(items(FakeEncoder(), texts(2)))
    assert time.monotonic() - t0 < 10


def test_a_writer_blocked_by_a_held_lock_gets_a_typed_timeout(tmp_path):
    """Another process holds the store's lock past ``lock_timeout``: a put and a migration each
    raise :class:`StoreError` naming the store, and nothing is written."""
    from filelock import FileLock

    from semtoken_rag.store.migrate import migrate

    enc = FakeEncoder()
    with FingerprintStore(tmp_path, codec="float16", lock_timeout=0.2) as s:
        s.put_many(items(enc, texts(2)))
        held = FileLock(str(tmp_path / ".lock"))
        held.acquire()
        try:
            with pytest.raises(
                StoreError, match=re.escape(f"timed out waiting for the lock of {tmp_path}")
            ):
                s.put_many(items(enc, texts(2, "new")))
            with pytest.raises(StoreError, match="timed out waiting for the lock"):
                migrate(tmp_path, "sq8", lock_timeout=0.2)
        finally:
            held.release()
        assert len(s) == 2 and s.stats().codec == "float16"


def test_a_lock_file_that_cannot_be_created_is_a_typed_error(tmp_path):
    """A lock path that is a directory (as unwritable as it gets under root): the error names
    the store and says what to do, instead of filelock's OSError."""
    from semtoken_rag.store.migrate import migrate

    FingerprintStore(tmp_path, codec="float16").close()
    (tmp_path / ".lock").unlink(missing_ok=True)
    (tmp_path / ".lock").mkdir()
    with pytest.raises(StoreError, match=r"cannot take the lock file of .*read_only=True"):
        FingerprintStore(tmp_path, lock_timeout=0.2)
    with pytest.raises(StoreError, match=r"cannot take the lock file of .*write access"):
        migrate(tmp_path, "sq8", lock_timeout=0.2)
    with FingerprintStore(tmp_path, read_only=True) as ro:  # lookups still work
        assert len(ro) == 0
