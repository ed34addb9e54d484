"""Hostile conditions for the store (issue 11 point 5, issue 13 "bad input"): read-only and
unwritable directories, damaged databases and codebooks, truncated WAL, old and future formats,
held and uncreatable locks, inspection that must not change anything.  Every case ends in a
typed error or a documented safe result."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from semtoken_rag.core.segment import find_words
from semtoken_rag.errors import StoreError
from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
from semtoken_rag.store import FingerprintStore, StoreDamagedError, StoreWarning
from tests.fakes import FakeEncoder
from tests.store_helpers import (
    DB_NAME,
    ROOT,
    SMALL_PQ,
    close_enough,
    digest,
    encoded,
    expected_slice,
    fill,
    info_cli,
    keys,
    long_texts,
    run_without_write_permission,
    sql,
    words_slice,
    write_old_format_store,
)


def _filled(path: Path, n: int = 40, codec=SMALL_PQ, tag: str = "h") -> list[str]:
    """``n`` documents of 60 words in a store at ``path`` (the small PQ trains from 18)."""
    docs = long_texts(n, tag)
    with FingerprintStore(path, codec=codec) as s:
        fill(s, FakeEncoder(), docs, batch_size=10)
    return docs


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(max(4096, path.stat().st_size // 2)))


def _smash_second_half(db_file: Path) -> None:
    """Random bytes over the second half of the file's pages (schema and meta intact)."""
    size = db_file.stat().st_size
    half = size // 2 // 4096 * 4096
    with open(db_file, "r+b") as fh:
        fh.seek(half)
        fh.write(os.urandom(size - half))


def _info(capsys, path: Path, *extra: str) -> tuple[int, str, str]:
    """``semtoken-rag store info PATH [extra]`` in this process: (status, stdout, stderr)."""
    from semtoken_rag.cli.main import main

    code = main(["store", "info", str(path), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- read-only -------------------------------------------------------------------------------
def test_read_only_open_serves_lookups_and_touches_nothing(tmp_path):
    docs = _filled(tmp_path)
    (tmp_path / ".lock").unlink()
    before = digest(tmp_path)
    enc = FakeEncoder()
    refs = enc.encode_texts(docs)
    with FingerprintStore(tmp_path, read_only=True, touch_interval=0.0) as s:
        got = s.lookup(docs, enc.cache_id)
        assert all(close_enough(g, r, 0.8) for g, r in zip(got, refs, strict=True))
        chunk = words_slice(docs[3], 10, 50)
        assert close_enough(
            s.lookup([chunk], enc.cache_id)[0], expected_slice(refs[3], 10, chunk), 0.8
        )
        s.put(docs[:1], refs[:1], enc.cache_id)  # documented: stores nothing, logs once
        new = ["a chunk nobody stored, not even now"]
        s.put(new, enc.encode_texts(new), enc.cache_id)
        with FingerprintStore(codec="float16") as other:
            assert s.write(encoded(other, enc, new)) == 0
        s.add_names({fingerprint_key(docs[0], enc.cache_id): ["name"]})
        s.flush()
        assert s.lookup(new, enc.cache_id) == [None]
        assert len(s) == len(docs) and s.verify() == [] and s.stats().trained
    assert digest(tmp_path) == before  # no lock file, no -wal/-shm, no LRU refresh written
    assert not list(tmp_path.glob("quarantine-*"))


@pytest.mark.parametrize("verify_on_open", [True, False])
def test_read_only_store_opened_without_a_writer_follows_later_writers(tmp_path, verify_on_open):
    """Opened while no writer had the store open, the read-only object was an immutable
    snapshot for good: it served documents a later writer evicted, missed the new ones, and,
    once the writer checkpointed, read pages of two versions ("malformed": a false damage
    warning telling the user to quarantine a healthy store)."""
    old = _filled(tmp_path, n=20, codec="float16", tag="old")
    enc = FakeEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no damage warning
        with FingerprintStore(tmp_path, read_only=True, verify_on_open=verify_on_open) as r:
            assert r.lookup(old[:1], enc.cache_id)[0] is not None
            new = long_texts(60, "new")
            with FingerprintStore(tmp_path, max_bytes=40_000) as w:  # evicts the old ones
                fill(w, enc, new, batch_size=10)
                kept = len(w)
                assert kept < 80
                assert all(w.lookup(new[-1:], enc.cache_id))
                assert w.lookup(old[:1], enc.cache_id) == [None]  # evicted
            assert len(r) == kept and r.verify() == []
            assert r.lookup(new[-1:], enc.cache_id)[0] is not None
            assert r.lookup(old[:1], enc.cache_id) == [None]  # not served from the snapshot


def test_read_only_store_keeps_serving_when_its_directory_cannot_be_reopened(tmp_path, caplog):
    """Following writers must not make a reader fail on a writer's account: a directory deleted
    under it (a cache clean-up), or a quarantine half done (an empty new file), left the
    snapshot serving before; a reopen that fails now keeps it too, and tries again later."""
    docs = _filled(tmp_path / "st", n=20, codec="float16")
    enc = FakeEncoder()
    with FingerprintStore(tmp_path / "st", read_only=True) as r:
        assert r.lookup(docs[:1], enc.cache_id)[0] is not None
        (tmp_path / "st" / DB_NAME).rename(tmp_path / "aside.sqlite3")
        (tmp_path / "st" / DB_NAME).write_bytes(b"")  # a new file, no schema yet
        with caplog.at_level("WARNING"):
            assert r.lookup(docs[:1], enc.cache_id)[0] is not None  # the snapshot serves
        assert "not reopened" in caplog.text
        shutil.rmtree(tmp_path / "st")
        assert r.lookup(docs[1:2], enc.cache_id)[0] is not None and len(r) == 20
        _filled(tmp_path / "new", n=5, codec="float16", tag="n")
        shutil.copytree(tmp_path / "new", tmp_path / "st")
        assert len(r) == 5  # a store is back: it is opened


def test_read_only_store_refuses_another_codec_after_a_reopen_and_warns_once(tmp_path, caplog):
    """Only a gone or unreadable file keeps the snapshot serving (logged once, not at every
    read); a store of another codec there is refused, as at the first open."""
    docs = _filled(tmp_path / "st", n=5, codec="float16")
    enc = FakeEncoder()
    with FingerprintStore(tmp_path / "st", read_only=True, codec="float16") as r:
        shutil.rmtree(tmp_path / "st")
        with caplog.at_level("WARNING"):
            for _ in range(3):
                assert r.lookup(docs[:1], enc.cache_id)[0] is not None
        assert caplog.text.count("not reopened") == 1
        _filled(tmp_path / "st", n=5, codec="float32", tag="x")
        with pytest.raises(StoreError, match="uses codec 'float32'"):
            r.lookup(docs[:1], enc.cache_id)


def test_read_only_store_tracks_the_connection_it_got_not_the_files_it_saw(tmp_path, monkeypatch):
    """The writer closed between the look at the directory (a ``-wal`` then) and the open (an
    immutable snapshot): only the file's identity was watched, and later writers never seen."""
    from semtoken_rag.store import recovery

    _filled(tmp_path, n=10, codec="float16", tag="a")
    real = recovery.ReadOnlyFile._state
    seen = iter([True])

    def first_look_sees_a_wal(self):  # type: ignore[no-untyped-def]
        state = real(self)
        return (*state[:-1], next(seen, state[-1]))

    monkeypatch.setattr(recovery.ReadOnlyFile, "_state", first_look_sees_a_wal)
    with FingerprintStore(tmp_path, read_only=True) as r:
        assert len(r) == 10
        _filled(tmp_path, n=10, codec="float16", tag="b")
        assert len(r) == 20


def test_read_only_open_of_a_damaged_block_warns_and_leaves_it(tmp_path):
    docs = _filled(tmp_path, codec="float16")
    enc = FakeEncoder()
    key = fingerprint_key(docs[5], enc.cache_id)
    (doc_id,) = sql(tmp_path, "SELECT id FROM documents WHERE key = ?", (key,))[0]
    sql(tmp_path, "UPDATE blocks SET checksum = zeroblob(32) WHERE id = ?", (doc_id << 20,))
    before = digest(tmp_path)
    with FingerprintStore(tmp_path, read_only=True) as s:
        with pytest.warns(StoreWarning, match="left in place"):
            assert s.lookup([docs[5]], enc.cache_id) == [None]
        assert len(s) == len(docs)
        assert s.lookup([docs[6]], enc.cache_id)[0] is not None
    assert digest(tmp_path) == before


def test_read_only_needs_a_store_there(tmp_path):
    with pytest.raises(StoreError, match="no fingerprint store"):
        FingerprintStore(tmp_path, read_only=True)
    assert list(tmp_path.iterdir()) == []  # nothing created
    with pytest.raises(StoreError, match="no fingerprint store"):
        FingerprintStore(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
@pytest.mark.parametrize("with_wal", [False, True])
def test_unwritable_directory(tmp_path, with_wal):
    """Another user's store: a writable open is a StoreError naming read_only=True; a
    read-only open serves lookups (also with un-checkpointed data in the WAL, when SQLite's
    -shm exists)."""
    docs = _filled(tmp_path)
    wal_docs = long_texts(5, "wal")
    if with_wal:  # a live writer leaves -wal/-shm behind (killed: never checkpointed)
        code = textwrap.dedent(
            f"""
            import os, sys
            sys.path.insert(0, {str(ROOT)!r})
            from semtoken_rag.store import FingerprintStore
            from tests.fakes import FakeEncoder
            from tests.store_helpers import fill, long_texts
            s = FingerprintStore(sys.argv[1])
            fill(s, FakeEncoder(), long_texts(5, "wal"))
            os.kill(os.getpid(), 9)
            """
        )
        subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, timeout=120)
        assert (tmp_path / (DB_NAME + "-wal")).stat().st_size > 0
    else:
        assert not (tmp_path / (DB_NAME + "-wal")).exists()
    want = docs + wal_docs + [words_slice(d, 5, 45) for d in docs]
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
            got = s.lookup({json.dumps(want)}, {FakeEncoder().cache_id!r})
            out["hits"] = sum(g is not None for g in got)
            out["documents"] = len(s)
        print(json.dumps(out))
        """
    )
    res = run_without_write_permission(tmp_path, probe)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert "not writable" in out["writable"] and "read_only=True" in out["writable"]
    expected = len(docs) + (5 if with_wal else 0)
    assert out["documents"] == expected and out["hits"] == expected + len(docs)


@pytest.mark.slow
def test_unwritable_directory_with_wal_but_no_shm_is_a_typed_error(tmp_path):
    _filled(tmp_path, 20, codec="float16")
    conn = sqlite3.connect(tmp_path / DB_NAME)  # keeps a WAL alive while we copy it
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE documents SET last_used = 1")
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
    assert "write-ahead log" in res.stdout


# -- damage with and without verification ------------------------------------------------
def test_damage_without_verify_on_open_is_typed(tmp_path):
    docs = _filled(tmp_path, 120, codec="float32")
    _smash_second_half(tmp_path / DB_NAME)
    enc = FakeEncoder()
    refs = enc.encode_texts(docs)
    with FingerprintStore(tmp_path, verify_on_open=False) as s:
        problems = s.verify()
        assert problems and all(isinstance(p, str) for p in problems)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = s.lookup(docs, enc.cache_id)
            chunks = s.lookup([words_slice(d, 5, 50) for d in docs], enc.cache_id)
            s.put(["stored into a damaged file?"], enc.encode_texts(["x y"]), enc.cache_id)
        assert any(issubclass(w.category, StoreWarning) for w in caught)
        assert not all(got)  # the smashed pages cost documents...
        for g, r in zip(got, refs, strict=True):  # ...but never a wrong vector
            assert g is None or close_enough(g, r, 0.99999)
        for g, r, d in zip(chunks, refs, docs, strict=True):
            assert g is None or close_enough(
                g, expected_slice(r, 5, words_slice(d, 5, 50)), 0.99999
            )
    with pytest.warns(StoreWarning, match="damaged"), FingerprintStore(tmp_path) as s:
        assert len(s) == 0  # verified open: quarantined, started again
    assert list(tmp_path.glob(f"quarantine-*/{DB_NAME}"))


@pytest.mark.parametrize("how", ["garbage", "truncated", "smashed pages"])
def test_store_info_on_damaged_store_changes_nothing(tmp_path, capsys, how):
    _filled(tmp_path, 60, codec="float32")
    db_file = tmp_path / DB_NAME
    if how == "garbage":
        _garbage(db_file)
    elif how == "truncated":
        os.truncate(db_file, db_file.stat().st_size // 3)
    else:  # the schema and meta intact, rows smashed: found by quick_check
        _smash_second_half(db_file)
    before = digest(tmp_path)
    for extra in ((), ("--check",), ("--check", "--json")):
        code, out, err = _info(capsys, tmp_path, *extra)
        assert code == 1, out
        assert "damaged" in (out + err).lower() and "check            ok" not in out
        if "--json" in extra:
            data = json.loads(out)
            assert data["damaged"] is True and data["problems"]
    assert digest(tmp_path) == before and not list(tmp_path.glob("quarantine-*"))


def test_store_info_check_ok_only_when_clean(tmp_path, capsys):
    docs = _filled(tmp_path, 30, codec="float16")
    code, out, _ = _info(capsys, tmp_path, "--check")
    assert code == 0 and "check            ok" in out and "documents        30" in out
    code, out, _ = _info(capsys, tmp_path, "--json")
    data = json.loads(out)
    assert code == 0 and data["documents"] == 30 and data["words"] == 30 * 60
    assert data["codec"] == "float16" and data["problems"] == []
    key = fingerprint_key(docs[0], FakeEncoder().cache_id)
    (doc_id,) = sql(tmp_path, "SELECT id FROM documents WHERE key = ?", (key,))[0]
    codes = bytearray(sql(tmp_path, "SELECT codes FROM blocks WHERE id = ?", (doc_id << 20,))[0][0])
    codes[0] ^= 0xFF  # one block's bytes damaged
    sql(tmp_path, "UPDATE blocks SET codes = ? WHERE id = ?", (bytes(codes), doc_id << 20))
    before = digest(tmp_path)
    code, out, _ = _info(capsys, tmp_path, "--check")
    assert code == 1 and "problems" in out and "checksum mismatch: block 0" in out
    assert "check            ok" not in out
    code, out, _ = _info(capsys, tmp_path, "--check", "--json")
    problems = json.loads(out)["problems"]
    assert code == 1 and any(key[:16] in p for p in problems)
    assert digest(tmp_path) == before


def test_store_info_of_nothing_and_of_old_and_future_formats(tmp_path, capsys):
    code, _, err = _info(capsys, tmp_path)
    assert code == 2 and "no fingerprint store" in err and "Traceback" not in err
    write_old_format_store(tmp_path / "old", 2)
    code, _, err = _info(capsys, tmp_path / "old")
    assert code == 2 and "Re-ingest" in err
    _filled(tmp_path / "future", 3, codec="float16")
    sql(tmp_path / "future", "UPDATE meta SET value = 4 WHERE name = 'format_version'")
    code, _, err = _info(capsys, tmp_path / "future")
    assert code == 2 and "newer" in err


@pytest.mark.slow
def test_store_info_cli_in_a_child_process(tmp_path):
    """``python -m semtoken_rag.cli.main store info``: a clean store, then a damaged one."""
    _filled(tmp_path, 20, codec="float16")
    res = info_cli(tmp_path, "--check", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["documents"] == 20 and data["problems"] == []
    res = info_cli(tmp_path, "--check")
    assert res.returncode == 0 and "check            ok" in res.stdout
    _garbage(tmp_path / DB_NAME)
    before = digest(tmp_path)
    res = info_cli(tmp_path, "--check")
    assert res.returncode == 1 and "DAMAGED" in res.stdout and "Traceback" not in res.stderr
    assert digest(tmp_path) == before
    res = info_cli(tmp_path / "nowhere")
    assert res.returncode == 2 and "no fingerprint store" in res.stderr


@pytest.mark.parametrize("how", ["digest", "garbage-with-digest", "missing"])
def test_damaged_codebook_is_quarantined(tmp_path, how):
    docs = _filled(tmp_path)
    enc = FakeEncoder()
    ((cid, codec, dim, factory, state, sha),) = sql(
        tmp_path,
        "SELECT id, codec, dim, factory, state, sha256 FROM codebooks WHERE codec = 'pq64'",
    )
    if how == "digest":  # the stored digest no longer matches the state
        bad = bytearray(sha)
        bad[0] ^= 0x01
        sql(tmp_path, "UPDATE codebooks SET sha256 = ? WHERE id = ?", (bytes(bad), cid))
    elif how == "garbage-with-digest":  # a consistent digest over bytes FAISS rejects
        from semtoken_rag.store.codebooks import Codebook

        junk = os.urandom(len(state))
        sha = Codebook.digest(codec, dim, factory, junk)
        sql(tmp_path, "UPDATE codebooks SET state = ?, sha256 = ? WHERE id = ?", (junk, sha, cid))
    else:
        sql(tmp_path, "DELETE FROM codebooks WHERE id = ?", (cid,))
    if how == "missing":  # blocks naming a codebook that does not exist: misses, then removed
        with FingerprintStore(tmp_path, read_only=True) as s:
            with pytest.warns(StoreWarning, match="left in place"):
                assert s.lookup(docs[-5:], enc.cache_id) == [None] * 5
            assert len(s) == len(docs)
        with FingerprintStore(tmp_path) as s:
            with pytest.warns(StoreWarning, match="checksum"):
                assert s.lookup(docs[-5:], enc.cache_id) == [None] * 5
            assert len(s) == len(docs) - 5
        return
    with pytest.raises(StoreDamagedError, match="damaged"):
        FingerprintStore(tmp_path, read_only=True)
    assert not list(tmp_path.glob("quarantine-*"))
    with pytest.warns(StoreWarning, match="damaged"), FingerprintStore(tmp_path) as s:
        assert len(s) == 0 and s.verify() == []
    assert list(tmp_path.glob(f"quarantine-*/{DB_NAME}"))


def test_verify_reports_a_damaged_codebook_state(tmp_path):
    """One byte of the trained codebook's state flipped on disk: ``verify()`` (the "full
    consistency check" that reads "every codebook's digest") must report it, also in a process
    that loaded the intact codebook before (ready codecs are cached by their claimed digest).
    """
    docs = _filled(tmp_path)
    ((cid, state),) = sql(tmp_path, "SELECT id, state FROM codebooks WHERE codec = 'pq64'")
    bad = bytearray(state)
    bad[len(bad) // 2] ^= 0x01
    sql(tmp_path, "UPDATE codebooks SET state = ? WHERE id = ?", (bytes(bad), cid))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        with FingerprintStore(tmp_path, verify_on_open=False) as s:
            assert len(s) in (0, len(docs))
            assert len(s) == 0 or s.verify() != []


@pytest.mark.slow
def test_a_damaged_codebook_state_is_quarantined_by_a_fresh_process(tmp_path):
    """One byte of the trained state flipped: a process that never loaded the codebook finds
    the digest mismatch on open (read-only: a typed error; writable: quarantine)."""
    _filled(tmp_path)
    ((cid, state),) = sql(tmp_path, "SELECT id, state FROM codebooks WHERE codec = 'pq64'")
    bad = bytearray(state)
    bad[len(bad) // 2] ^= 0x01
    sql(tmp_path, "UPDATE codebooks SET state = ? WHERE id = ?", (bytes(bad), cid))
    code = textwrap.dedent(
        """
        import sys, warnings
        from semtoken_rag.store import FingerprintStore, StoreDamagedError, StoreWarning
        try:
            FingerprintStore(sys.argv[1], read_only=True)
        except StoreDamagedError as exc:
            print("read-only:", exc)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with FingerprintStore(sys.argv[1]) as s:
                print("documents:", len(s))
        print("warned:", any(issubclass(w.category, StoreWarning) for w in caught))
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
        timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "read-only:" in res.stdout and "damaged" in res.stdout
    assert "documents: 0" in res.stdout and "warned: True" in res.stdout
    assert list(tmp_path.glob(f"quarantine-*/{DB_NAME}"))


@pytest.mark.slow
def test_truncated_wal_keeps_a_consistent_prefix(tmp_path):
    """A WAL cut mid-frame (disk full, a copy interrupted): SQLite ignores the torn frames;
    the store opens, serves every document of the transactions that survive, verify() clean."""
    base = _filled(tmp_path, 20, codec="float16")
    code = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from semtoken_rag.store import FingerprintStore
        from tests.fakes import FakeEncoder
        from tests.store_helpers import fill, long_texts
        s = FingerprintStore(sys.argv[1])
        for b in range(6):
            fill(s, FakeEncoder(), long_texts(10, f"w{{b}}-"))
        os.kill(os.getpid(), 9)
        """
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, timeout=120)
    wal = tmp_path / (DB_NAME + "-wal")
    os.truncate(wal, wal.stat().st_size * 2 // 3 + 7)  # not on a frame boundary
    enc = FakeEncoder()
    with FingerprintStore(tmp_path) as s:
        assert s.verify() == []
        got = s.lookup(base, enc.cache_id)
        refs = enc.encode_texts(base)
        assert all(close_enough(g, r, 0.9999) for g, r in zip(got, refs, strict=True))
        batches = [
            sum(g is not None for g in s.lookup(long_texts(10, f"w{b}-"), enc.cache_id))
            for b in range(6)
        ]
        assert all(n in (0, 10) for n in batches)  # whole transactions or nothing
        assert batches == sorted(batches, reverse=True)  # a prefix of the commits survives
        assert 0 < sum(batches) < 60  # the cut removed some, kept some
        assert len(s) == len(base) + sum(batches)


@pytest.mark.parametrize("change", ["future-format", "unknown-codec"])
def test_future_format_and_unknown_codec_leave_the_store_alone(tmp_path, change):
    """A store this version cannot read is refused with a typed error, read-only or not, and
    its database is left byte for byte as it was."""
    _filled(tmp_path, 10, codec="float16")
    if change == "future-format":
        sql(tmp_path, "UPDATE meta SET value = 4 WHERE name = 'format_version'")
        message = "format 4, written by a newer"
    else:
        sql(tmp_path, "UPDATE meta SET value = 'rq32' WHERE name = 'codec'")
        message = "codec 'rq32', unknown"
    before = digest(tmp_path)
    with pytest.raises(StoreError, match=message):
        FingerprintStore(tmp_path, read_only=True)
    assert digest(tmp_path) == before
    for kw in ({}, {"codec": "float16"}, {"verify_on_open": True}):
        with pytest.raises(StoreError, match=message):
            FingerprintStore(tmp_path, **kw)
        assert not list(tmp_path.glob("quarantine-*"))
        assert digest(tmp_path) == before, kw


def test_codec_that_cannot_train_yet_stays_float16_without_faiss_errors(tmp_path):
    """Fewer words than the codec needs: documented fallback (float16), never a FAISS crash;
    a codec spec below FAISS's minimum is refused up front."""
    enc = FakeEncoder()
    docs = long_texts(4)  # 240 words < 256 centroids
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        report = fill(s, enc, docs)
        st = s.stats()
        assert not report.trained and not st.trained and st.staged_words == 240
        got = s.lookup(docs, enc.cache_id)
        assert all(close_enough(g, r, 0.9999) for g, r in zip(got, enc.encode_texts(docs)))
    with pytest.raises(StoreError, match="train_min"):
        SMALL_PQ.with_options(train_min=10)
    from semtoken_rag.store.codecs import train

    with pytest.raises(StoreError, match="needs 1024 vectors"):
        train(SMALL_PQ, np.ones((100, 32), np.float32))


def _subspace_texts(
    n: int, lo: int, hi: int, tag: str
) -> tuple[list[str], list[ChunkFingerprints]]:
    """``n`` 40-word texts whose unit vectors live in dimensions ``lo:hi`` only."""
    rng = np.random.default_rng(lo)
    texts, fps = [], []
    for i in range(n):
        text = " ".join(f"{tag}{i}w{j}" for j in range(40))
        v = np.zeros((40, 32), np.float32)
        v[:, lo:hi] = rng.standard_normal((40, hi - lo))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        texts.append(text)
        fps.append(ChunkFingerprints(v, find_words(text)))
    return texts, fps


def test_vectors_the_codebook_does_not_fit_stay_float16(tmp_path):
    """Another encoder's vectors of the same dimension: the fidelity guard keeps them in
    float16 instead of degrading them with a codebook trained on other statistics."""
    fit_texts, fit = _subspace_texts(40, 0, 8, "fit")  # 1,600 vectors living in dims 0-7
    odd_texts, odd = _subspace_texts(5, 8, 32, "odd")  # another "encoder": dims 8-31
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as s:
        s.put(fit_texts, fit, "enc")
        assert s.stats().trained and s.stats().staged_words == 0
        s.put(odd_texts, odd, "enc")
        assert s.stats().staged_words == 5 * 40
        got = s.lookup(odd_texts, "enc")
        assert all(close_enough(g, fp, 0.999) for g, fp in zip(got, odd, strict=True))
        # One write mixing both: the guard judges each block, not the batch.
        more_fit_texts, more_fit = _subspace_texts(6, 0, 8, "fit2")
        more_odd_texts, more_odd = _subspace_texts(3, 8, 32, "odd2")
        s.put([*more_fit_texts, *more_odd_texts], [*more_fit, *more_odd], "enc")
        assert s.stats().staged_words == (5 + 3) * 40 and s.verify() == []


def test_batched_encoding_stores_the_same_codes_as_document_by_document(tmp_path):
    """Ingestion encodes a batch in one codec call; each document's stored codes must be those
    it gets alone (same codebook: training is deterministic on the same sample)."""
    enc = FakeEncoder()
    first, later = long_texts(40, "first"), long_texts(12, "later")
    batched, single = tmp_path / "batched", tmp_path / "single"
    for where in (batched, single):
        with FingerprintStore(where, codec=SMALL_PQ) as s:
            fill(s, enc, first)
            assert s.stats().trained
            if where == batched:
                fill(s, enc, later, batch_size=64)
            else:
                for doc in later:
                    fill(s, enc, [doc])
    with FingerprintStore(batched) as a, FingerprintStore(single) as b:
        for x, y in zip(a.lookup(later, enc.cache_id), b.lookup(later, enc.cache_id), strict=True):
            assert x is not None and y is not None
            np.testing.assert_array_equal(x.vectors, y.vectors)
            np.testing.assert_array_equal(x.word_spans, y.word_spans)


# -- locks --------------------------------------------------------------------------------------
@pytest.mark.slow
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
    enc = FakeEncoder()
    with FingerprintStore(tmp_path, lock_timeout=10) as s:
        assert fill(s, enc, long_texts(2)).encoded == 2
    with FingerprintStore(tmp_path, lock_timeout=0.5) as s:  # and nothing held it since
        assert len(s) == 2


def test_a_writer_blocked_by_a_held_lock_gets_a_typed_timeout(tmp_path):
    """Another process holds the store's lock past ``lock_timeout``: every write raises
    :class:`StoreError` naming the store, nothing is written, and lookups never wait."""
    from filelock import FileLock

    enc = FakeEncoder()
    docs = long_texts(2)
    with FingerprintStore(tmp_path, codec="float16", lock_timeout=0.2) as s:
        fill(s, enc, docs)
        ready = encoded(s, enc, long_texts(2, "new"))
        held = FileLock(str(tmp_path / ".lock"))
        held.acquire()
        try:
            timeout = re.escape(f"timed out waiting for the lock of {tmp_path}")
            for write in (
                lambda: s.put(long_texts(2, "new"), enc.encode_texts(long_texts(2, "new")),
                              enc.cache_id),
                lambda: s.write(ready),
                lambda: s.add_names({"k": ["n"]}),
                lambda: s.codec_set(32),
                lambda: fill(s, enc, long_texts(2, "new")),
            ):  # fmt: skip
                with pytest.raises(StoreError, match=timeout):
                    write()
            with pytest.raises(StoreError, match=timeout):
                FingerprintStore(tmp_path, lock_timeout=0.2)
            assert all(s.lookup(docs, enc.cache_id))  # readers take no file lock
            with FingerprintStore(tmp_path, read_only=True) as ro:
                assert len(ro) == 2
        finally:
            held.release()
        assert len(s) == 2 and s.stats().codec == "float16"
        assert fill(s, enc, long_texts(2, "new")).encoded == 2  # released: writes work again


def test_a_lock_file_that_cannot_be_created_is_a_typed_error(tmp_path):
    """A lock path that is a directory (as unwritable as it gets under root): the error names
    the store and says what to do, instead of filelock's OSError."""
    _filled(tmp_path, 3, codec="float16")
    (tmp_path / ".lock").unlink(missing_ok=True)
    (tmp_path / ".lock").mkdir()
    with pytest.raises(StoreError, match=r"cannot take the lock file of .*read_only=True"):
        FingerprintStore(tmp_path, lock_timeout=0.2)
    with FingerprintStore(tmp_path, read_only=True) as ro:  # lookups still work
        assert len(ro) == 3 and all(ro.lookup(long_texts(3, "h"), FakeEncoder().cache_id))


def test_a_store_path_that_is_a_file_is_a_typed_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError, match=r"not a directory|cannot create"):
        FingerprintStore(tmp_path / "file")
    with pytest.raises(StoreError, match="cannot create store directory"):
        FingerprintStore(tmp_path / "file" / "below")


# -- failed writes, damage met while writing, refused inputs (second bug hunt) -------------------
@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (sqlite3.OperationalError("database or disk is full"), StoreError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
)
def test_a_failed_training_write_forgets_the_codebook_it_rolled_back(
    tmp_path, monkeypatch, error, raised
):
    """A write that trains the codec, then fails (disk full, Ctrl-C) is rolled back, and so is
    the store's codebook cache: later writes must not encode with a codebook the database does
    not hold (after a reopen their documents would be undecodable); the codec trains again."""
    from semtoken_rag.store import get_codec, writes

    spec = get_codec("pq64").with_options(train_min=512)
    enc = FakeEncoder()
    first, second = long_texts(6, "a", words=80), long_texts(4, "b", words=80)
    third = long_texts(3, "c", words=80)
    real = writes.maybe_train

    def train_then_fail(*args):
        assert real(*args)  # the codebook is added in this transaction...
        raise error  # ...which then fails

    with FingerprintStore(tmp_path, codec=spec) as s:
        assert s.write(encoded(s, enc, first)) == 6  # 480 staged words: not trained yet
        batch = encoded(s, enc, second)  # brings the staged words to 800
        monkeypatch.setattr(writes, "maybe_train", train_then_fail)
        with pytest.raises(raised):
            s.write(batch)
        monkeypatch.undo()
        assert len(s) == 6 and not s.stats().trained
        assert s.write(encoded(s, enc, third)) == 3  # float16 blocks, not a phantom codebook's
        assert s.write(batch) == 4 and s.stats().trained  # trains again
    with FingerprintStore(tmp_path) as s:
        assert s.verify() == [] and len(s) == 13
        assert all(fp is not None for fp in s.lookup(first + second + third, enc.cache_id))


def _wreck_roots(db_file: Path, names: tuple[str, ...]) -> None:
    """Overwrite the root pages of the named tables or indexes (header kept): SQLite reports
    the file malformed when a statement reaches them, while the rest of the store reads."""
    conn = sqlite3.connect(db_file)
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    marks = ",".join("?" * len(names))
    roots = [
        r
        for (r,) in conn.execute(
            f"SELECT rootpage FROM sqlite_master WHERE name IN ({marks})", names
        )
    ]
    conn.close()
    assert len(roots) == len(names)
    with open(db_file, "r+b") as fh:
        for root in roots:
            fh.seek((root - 1) * page + 8)
            fh.write(b"\xff" * (page - 8))


def test_damage_met_while_removing_a_damaged_document_is_a_warning_and_a_miss(tmp_path):
    """A lookup deletes a document that fails its checksum; when that delete meets damage of
    its own (an index page, in a store opened without ``quick_check`` as above 1 GiB), the
    lookup still answers (a miss and a :class:`StoreWarning`), and so does ``add_names``."""
    enc = FakeEncoder()
    docs = long_texts(30, "d", words=300)
    keys = [fingerprint_key(d, enc.cache_id) for d in docs]
    with FingerprintStore(tmp_path, codec="float32") as s:
        s.write(encoded(s, enc, docs))
        s.add_names({k: [f"name{i}"] for i, k in enumerate(keys)})
    doc = sql(tmp_path, "SELECT id FROM documents WHERE key = ?", [keys[0]])[0][0]
    sql(tmp_path, "UPDATE blocks SET checksum = zeroblob(32) WHERE id = ?", [doc << 20])
    sql(tmp_path, "PRAGMA wal_checkpoint(TRUNCATE)")
    _wreck_roots(tmp_path / DB_NAME, ("shingles_document", "names_document"))
    with FingerprintStore(tmp_path, verify_on_open=False) as s:
        with pytest.warns(StoreWarning) as caught:
            assert s.lookup([docs[0]], enc.cache_id) == [None]
        said = [str(w.message) for w in caught]
        assert any("checksums" in m for m in said) and any("malformed" in m for m in said)
        with pytest.warns(StoreWarning, match="names were not recorded"):
            s.add_names({keys[1]: ["another name"]})
        assert s.lookup([docs[2]], enc.cache_id)[0] is not None  # the rest still serves


def test_codec_set_of_a_read_only_store_is_a_typed_error(tmp_path):
    FingerprintStore(tmp_path, codec="float16").close()
    (tmp_path / ".lock").unlink()
    before = digest(tmp_path)
    with (
        FingerprintStore(tmp_path, read_only=True) as ro,
        pytest.raises(StoreError, match="read-only"),
    ):
        ro.codec_set(32)
    assert digest(tmp_path) == before


def test_encode_documents_refuses_non_finite_vectors_and_another_dimension():
    """The writer's own entry point checks what it encodes: NaN or infinity never enters a
    store (docs/store.md), fingerprints of another dimension than the codec set are a typed
    error naming both (not a numpy reshape error)."""
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.store import (
        DocumentFingerprints,
        NonFiniteFingerprintsError,
        encode_documents,
    )

    enc, enc64 = FakeEncoder(), FakeEncoder(64)
    doc = long_texts(1, "n", words=80)[0]
    fp = enc.encode_texts([doc])[0]
    with FingerprintStore(codec="float32") as s:
        codecs = s.codec_set(32)
        for bad in (np.nan, np.inf):
            vectors = fp.vectors.copy()
            vectors[3, 3] = bad
            item = DocumentFingerprints(
                fingerprint_key(doc, enc.cache_id), doc, ChunkFingerprints(vectors, fp.word_spans)
            )
            with pytest.raises(NonFiniteFingerprintsError):
                encode_documents([item], codecs, encoder=enc.cache_id)
        item64 = DocumentFingerprints(
            fingerprint_key(doc, enc64.cache_id), doc, enc64.encode_texts([doc])[0]
        )
        with pytest.raises(InvalidInputError, match=r"64-dimensional .* dimension 32"):
            encode_documents([item64], codecs, encoder=enc64.cache_id)
        assert len(s) == 0


def test_a_text_with_a_lone_surrogate_is_served_once_stored():
    """Lone surrogates are accepted input (semtoken_rag/inputs.py): stored words and a
    lookup's words are both those of ``model_text``, so a text the engine put is served
    (not re-encoded on every call), and a chunk covering such a word is found."""
    from semtoken_rag.preparation import fingerprints_of

    enc = FakeEncoder()
    chunk = "alpha beta \ud800gamma delta epsilon"
    with FingerprintStore(codec="float32") as s:
        assert fingerprints_of([chunk], enc, s)[1] == 1
        assert fingerprints_of([chunk], enc, s)[1] == 0 and len(s) == 1
    doc = (
        " ".join(f"w{i}" for i in range(50))
        + " bad\udc80word "
        + " ".join(f"v{i}" for i in range(50))
    )
    with FingerprintStore(codec="float32") as s:
        fill(s, enc, [doc])
        words = doc.split(" ")
        inside = " ".join(words[30:80])
        assert s.lookup([inside, doc], enc.cache_id)[0] is not None
        assert s.lookup([doc], enc.cache_id)[0] is not None


def test_chunk_source_fields_are_validated():
    """``ChunkSource`` is a plain dataclass: a start that is not an offset, or a document
    name that is not a string, is an :class:`InvalidInputError` naming it (not a TypeError,
    an OverflowError or SQLite's binding error); numpy scalars are taken as plain values."""
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.fingerprints import ChunkSource

    enc = FakeEncoder()
    docs = long_texts(3, "s", words=80)
    with FingerprintStore(codec="float32") as s:
        s.write(encoded(s, enc, docs))
        s.add_names({fingerprint_key(docs[0], enc.cache_id): ["report.txt"]})
        spans = find_words(docs[0])
        start = int(spans[5, 0])
        chunk = docs[0][start : int(spans[40, 1])]
        for bad in (str(start), 2**64, -1, True, 2.0):
            for name in ("report.txt", None):
                with pytest.raises(InvalidInputError, match=re.escape(repr(bad))):
                    s.lookup([chunk], enc.cache_id, [ChunkSource(name, bad)])
        for bad_name in (["report.txt"], 5, b"report.txt"):
            with pytest.raises(InvalidInputError, match="document must be a str"):
                s.lookup([chunk], enc.cache_id, [ChunkSource(bad_name, None)])
        plain = ChunkSource(np.str_("report.txt"), np.int64(start))
        assert s.lookup([chunk], enc.cache_id, [plain])[0] is not None


def test_a_codebook_damaged_after_open_is_typed_damage(tmp_path):
    """Another process wrote a codebook that fails its digest while this store was open:
    ``codec_set`` raises :class:`StoreDamagedError` (it has no safe result), ``write`` and
    ``put`` warn and store nothing (as for SQLite damage), lookups still serve what they can;
    a reopen quarantines the store."""
    from semtoken_rag.store import get_codec

    enc = FakeEncoder()
    docs, new = long_texts(2, "k", words=60), long_texts(1, "e", words=60)
    with FingerprintStore(tmp_path, codec=get_codec("pq64").with_options(train_min=256)) as s:
        s.write(encoded(s, enc, docs))
        ready = encoded(s, enc, new)
        sql(
            tmp_path,
            "INSERT INTO codebooks(codec, dim, factory, encoder, train_vectors, train_cos, "
            "created, sha256, state) "
            "VALUES ('pq64', 32, 'PQ5x8np', 'x', 0, 1.0, 0, x'00', x'0102')",
        )
        with pytest.raises(StoreDamagedError, match="damaged"):
            s.codec_set(32)
        with pytest.warns(StoreWarning, match="codebook .* damaged"):
            assert s.write(ready) == 0
        with pytest.warns(StoreWarning, match="damaged"):
            s.put(new, enc.encode_texts(new), enc.cache_id)
        assert len(s) == 2 and all(s.lookup(docs, enc.cache_id))
    with pytest.warns(StoreWarning, match="quarantine"), FingerprintStore(tmp_path) as s:
        assert len(s) == 0


def test_codec_specs_other_than_registered_codecs_are_refused_before_anything_is_created(
    tmp_path,
):
    """A store records its codec by name and a reopen looks it up: a spec of another name, or
    a registered name with other format fields, would leave a directory no open can use."""
    from semtoken_rag.store import CodecSpec, get_codec

    for i, spec in enumerate(
        [SMALL_PQ.with_options(name="mypq"), CodecSpec("float16", "raw", bits=12)]
    ):
        with pytest.raises(StoreError, match=r"mypq|float16"):
            FingerprintStore(tmp_path / str(i), codec=spec)
        assert not (tmp_path / str(i)).exists()
    assert get_codec(SMALL_PQ) is SMALL_PQ  # training options may differ
    with FingerprintStore(tmp_path / "ok", codec=SMALL_PQ) as s:
        assert s.codec.train_min == SMALL_PQ.train_min


def test_put_refuses_fingerprints_of_another_word_count_and_a_short_document_is_no_damage(
    caplog,
):
    """``put`` skips (and logs) fingerprints whose word count is not the text's, as it skips
    non-finite ones; a stored document shorter than a chunk with its key is a miss, not
    damage (the exact-key candidate is checked to fit like every other)."""
    import logging

    from semtoken_rag.store import DocumentFingerprints, encode_documents

    enc = FakeEncoder()
    text = long_texts(1, "m", words=200)[0]
    fp = enc.encode_texts([text])[0]
    short = ChunkFingerprints(fp.vectors[:100], fp.word_spans[:100])
    with FingerprintStore(codec="float32") as s:
        with caplog.at_level(logging.WARNING):
            s.put([text], [short], enc.cache_id)
        assert len(s) == 0 and "100 fingerprints" in caplog.text
        item = DocumentFingerprints(fingerprint_key(text, enc.cache_id), text, short)
        assert s.write(encode_documents([item], s.codec_set(32), encoder=enc.cache_id)) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error", StoreWarning)
            assert s.lookup([text], enc.cache_id) == [None]
        assert len(s) == 1 and s.verify() == []


def test_out_of_range_and_mistyped_codec_arguments_are_typed_errors():
    from semtoken_rag.errors import InvalidInputError
    from semtoken_rag.store import CodecSpec, get_codec

    with FingerprintStore(codec="float32") as s:
        for bad in (2**70, 2**17):
            with pytest.raises(InvalidInputError, match="dim must be at most"):
                s.codec_set(bad)
    with pytest.raises(StoreError, match="unreadable codec description"):
        CodecSpec.from_json(None)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="train_min must be an int"):
        get_codec("pq64").with_options(train_min="5")


def test_a_lookup_meeting_damage_never_waits_for_another_writer(tmp_path):
    """Damaged documents found by a lookup are removed only when no other process holds the
    write lock; otherwise they stay misses for a later lookup to remove (a lookup never waits
    up to ``lock_timeout`` for a writer)."""
    from filelock import FileLock

    docs = _filled(tmp_path, codec="float16")
    enc = FakeEncoder()
    key = fingerprint_key(docs[5], enc.cache_id)
    (doc_id,) = sql(tmp_path, "SELECT id FROM documents WHERE key = ?", (key,))[0]
    sql(tmp_path, "UPDATE blocks SET checksum = zeroblob(32) WHERE id = ?", (doc_id << 20,))
    with FingerprintStore(tmp_path, lock_timeout=30) as s:
        other = FileLock(str(tmp_path / ".lock"))  # another writer (its own lock file handle)
        with other, pytest.warns(StoreWarning, match="left for a later lookup"):
            assert s.lookup([docs[5]], enc.cache_id) == [None]
        assert len(s) == len(docs)
        with pytest.warns(StoreWarning, match="and removed"):
            assert s.lookup([docs[5]], enc.cache_id) == [None]
        assert len(s) == len(docs) - 1 and s.verify() == []


def test_stats_see_a_codec_another_store_object_trained(tmp_path):
    """``stats().trained`` is read from the database, not from this object's cached codebooks:
    a second object on the same directory sees the training the first one did."""
    docs = long_texts(40, "t")
    with FingerprintStore(tmp_path, codec=SMALL_PQ) as a, FingerprintStore(tmp_path) as b:
        assert not a.stats().trained and not b.stats().trained
        fill(a, FakeEncoder(), docs, batch_size=10)
        assert a.stats().trained and b.stats().trained


def test_a_store_object_follows_the_directory_when_another_quarantines_it(tmp_path):
    """Two store objects on one directory: when ``b`` finds the file damaged, moves it to a
    quarantine folder and starts a new one, ``a``'s connection still points at the moved file.
    ``a``'s later writes landed in the quarantine folder (lost to every later open) and its
    lookups read there; it must notice the move and reconnect to the directory's new file."""
    enc = FakeEncoder()
    first, second, third = long_texts(3, "qa"), long_texts(3, "qb"), long_texts(3, "qc")
    a = FingerprintStore(tmp_path, codec="float32")
    try:
        a.write(encoded(a, enc, first))
        sql(tmp_path, "DELETE FROM meta WHERE name = 'codec_spec'")  # damage found on open
        with pytest.warns(StoreWarning, match="damaged"):
            b = FingerprintStore(tmp_path, codec="float32")
        with b:
            assert len(b) == 0
            assert a.write(encoded(a, enc, second)) == 3  # written after the quarantine
            assert b.contains(keys(enc, second)) == set(keys(enc, second))
            assert a.lookup(first[:1], enc.cache_id) == [None]  # quarantined: not served
            b.write(encoded(b, enc, third))
            assert a.contains(keys(enc, third)) == set(keys(enc, third)) and len(a) == 6
    finally:
        a.close()
    with FingerprintStore(tmp_path) as c:
        assert c.contains(keys(enc, second + third)) == set(keys(enc, second + third))
    (moved,) = tmp_path.glob(f"quarantine-*/{DB_NAME}")
    assert sql(moved.parent, "SELECT count(*) FROM documents") == [(3,)]  # only the first


@pytest.mark.slow
def test_a_process_follows_the_directory_when_another_process_quarantines_it(tmp_path):
    """The same across processes: a child holds the store open, this process quarantines the
    damaged file, then the child writes; its documents must be in the directory's new file."""
    enc = FakeEncoder()
    first, second = long_texts(3, "pa"), long_texts(3, "pb")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from semtoken_rag.store import FingerprintStore
        from tests.fakes import FakeEncoder
        from tests.store_helpers import encoded, long_texts
        enc = FakeEncoder()
        with FingerprintStore(sys.argv[1], codec="float32") as s:
            s.write(encoded(s, enc, long_texts(3, "pa")))
            print("first", flush=True)
            sys.stdin.readline()
            print("second", s.write(encoded(s, enc, long_texts(3, "pb"))), flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "first"
        sql(tmp_path, "DELETE FROM meta WHERE name = 'codec_spec'")
        with pytest.warns(StoreWarning, match="damaged"):
            b = FingerprintStore(tmp_path, codec="float32")
        with b:
            assert len(b) == 0
        out, err = child.communicate("go\n", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0 and out.strip() == "second 3", err
    with FingerprintStore(tmp_path) as c:
        assert c.contains(keys(enc, second)) == set(keys(enc, second))
        assert not c.contains(keys(enc, first))
