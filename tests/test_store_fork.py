"""Hostile review of a store used across ``fork`` (gunicorn ``--preload``, a fork ``Pool``):
a parent thread inside the store at the fork, the parent closing its store while children
use theirs, damage found by the child's own open, and what the child buffers and counts.

Children report through a pipe and end with ``os._exit``, never returning into pytest; the
parent waits a few seconds at most and kills a child that hangs.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import pytest

from semtoken_rag.store import FingerprintStore, StoreWarning
from semtoken_rag.store import store as store_module
from tests.fakes import FakeEncoder
from tests.store_helpers import SMALL_PQ, fill, long_texts, run_in_child, sql

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _hits(store: FingerprintStore, docs: list[str], enc: FakeEncoder) -> int:
    return sum(fp is not None for fp in store.lookup(docs, enc.cache_id))


@pytest.mark.parametrize("where", ["directory", "memory"])
def test_a_fork_while_another_thread_is_inside_the_store_leaves_the_child_a_usable_store(
    tmp_path, monkeypatch, where
):
    """A thread of the parent mid-lookup (or mid-write, or waiting for another process's
    lock) holds the store's lock when another thread forks (a web app creating a fork
    ``Pool``).  The child inherited the lock held by a thread that does not exist there: its
    first lookup waited for ever.  The child now gets a lock of its own and a connection no
    thread of it was using (an in-memory store mid-transaction starts empty)."""
    enc = FakeEncoder()
    docs = long_texts(3, "busy")
    store = FingerprintStore(None if where == "memory" else tmp_path, codec="float16")
    fill(store, enc, docs)
    inside, leave, parent = threading.Event(), threading.Event(), os.getpid()
    run = store_module.Locator.run

    def slow_run(self, queries):  # the parent's thread stops inside its read transaction
        if os.getpid() == parent:
            inside.set()
            leave.wait(10)
        return run(self, queries)

    monkeypatch.setattr(store_module.Locator, "run", slow_run)
    thread = threading.Thread(target=store.lookup, args=(docs[:1], enc.cache_id))
    thread.start()
    try:
        assert inside.wait(10)
        outcome = run_in_child(lambda: f"{_hits(store, docs, enc)} {len(store)}", timeout=5)
    finally:
        leave.set()
        thread.join()
    assert outcome == ("0 0" if where == "memory" else "3 3")
    assert _hits(store, docs, enc) == 3  # the parent's store works on
    assert store.verify() == []
    store.close()


@pytest.mark.parametrize("child", ["inherited-reader", "own-writer"])
def test_the_parents_close_keeps_the_write_ahead_log_its_children_still_use(tmp_path, child):
    """SQLite keeps its file locks' bookkeeping per process and file, and a child inherits the
    parent's: with the parent's connection open at the fork, the child's own connections to
    the file (the store object's, or a store the child opens itself, as the docs say) took no
    lock of their own.  The parent's ``close``, finding the file unlocked, checkpointed and
    deleted the write-ahead log and its index under the children: a child's reads went stale
    for good (documents written later were never found) and a child's own committed writes,
    in the deleted log, were lost.  The child now closes the idle connection it inherited at
    the fork, before it opens any of its own."""
    enc = FakeEncoder()
    docs = long_texts(12, "wal")
    store = FingerprintStore(tmp_path, codec="float16")
    fill(store, enc, docs[:4])
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()

    def body() -> str:
        own = FingerprintStore(tmp_path) if child == "own-writer" else store
        if child == "own-writer":
            fill(own, enc, docs[4:8])
        before = _hits(own, docs, enc)
        os.write(ready_w, b"x")
        os.read(go_r, 1)  # the parent closed its store; docs[4:8] were written since
        if child == "own-writer":
            fill(own, enc, docs[8:])  # committed, then the child ends without close
        return f"{before} {_hits(own, docs, enc)}"

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.write(write, body().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    os.read(ready_r, 1)
    store.close()
    if child == "inherited-reader":
        with FingerprintStore(tmp_path) as other:
            fill(other, enc, docs[4:8])
    os.write(go_w, b"x")
    outcome = os.read(read, 4096).decode()
    assert os.waitpid(pid, 0)[1] == 0
    assert outcome == ("8 12" if child == "own-writer" else "4 8")
    with FingerprintStore(tmp_path) as fresh:
        expected = 12 if child == "own-writer" else 8
        assert _hits(fresh, docs, enc) == expected and len(fresh) == expected
        assert fresh.verify() == []


def test_a_child_whose_own_open_finds_damage_misses_with_a_warning(tmp_path):
    """Damage a read-only open refuses (a store's metadata row missing) while the parent's
    connection serves on: a child forked then raised ``StoreDamagedError`` from every lookup
    (a preloaded web app's workers failed every request) where the parent's lookups never
    raise on damage.  The child's lookups now miss with a :class:`StoreWarning`, ``contains``
    finds nothing and ``verify`` reports the damage, as the store's damage contract says."""
    enc = FakeEncoder()
    docs = long_texts(3, "dmg")
    store = FingerprintStore(tmp_path, codec="float16")
    fill(store, enc, docs)
    sql(Path(tmp_path), "DELETE FROM meta WHERE name = 'codec_spec'")

    def body() -> str:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            hits = _hits(store, docs, enc)
            found = store.contains(["nothing"])
            problems = store.verify()
        damaged = any(issubclass(w.category, StoreWarning) for w in seen)
        return f"{hits} {found} {damaged} {bool(problems)}"

    assert run_in_child(body) == "0 set() True True"
    assert _hits(store, docs, enc) == 3  # the parent's store serves on
    store.close()


def test_a_forked_child_counts_only_its_own_lookups(tmp_path):
    """A child's ``stats()`` counted the parent's hits and misses as its own ("this process's
    lookups").  (It also buffers no LRU refresh now: its writes are refused, so they piled up
    for the worker's life; that is internal state, not tested here.)"""
    enc = FakeEncoder()
    docs = long_texts(4, "lru")
    store = FingerprintStore(tmp_path, codec="float16", touch_interval=0.0)
    fill(store, enc, docs)
    assert _hits(store, docs, enc) == 4

    def body() -> str:
        hits = _hits(store, docs, enc)
        stats = store.stats()
        return f"{hits} {stats.hits} {stats.misses}"

    assert run_in_child(body) == "4 4 0"
    assert store.stats().hits == 4
    store.close()


def test_a_forked_child_trains_and_decodes_after_the_parent_used_faiss(tmp_path):
    """libgomp's threads do not survive a fork: once the parent had trained a codec on two
    OpenMP threads, a child's own store waited for ever in FAISS's training (faiss #5206)."""
    faiss = pytest.importorskip("faiss")
    enc = FakeEncoder()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)  # a parallel region with a second thread, on any machine
    try:
        with FingerprintStore(tmp_path / "parent", codec=SMALL_PQ) as parent:
            fill(parent, enc, long_texts(20, "p"))  # 1,200 words reach train_min: FAISS trains
            assert parent.stats().trained

        def body() -> str:
            with FingerprintStore(tmp_path / "child", codec=SMALL_PQ) as child:
                report = fill(child, enc, long_texts(20, "c"))
                return f"{report.encoded} {child.stats().trained} {child.verify()}"

        assert run_in_child(body, timeout=60) == "20 True []"
        assert faiss.omp_get_max_threads() == 2  # the parent's own setting is left alone
    finally:
        faiss.omp_set_num_threads(threads)


def test_compress_in_a_forked_child_serves_hits_and_encodes_misses(tmp_path):
    """A preloaded web app: the engine and its writable store are built before the workers
    fork.  A worker's compress with a miss raised ``StoreError`` (the engine's put of the
    misses it encoded is refused there); it now returns the result and logs the put."""
    from semtoken_rag import Compressor, SemTokenConfig
    from tests.fakes import WhitespaceCounter

    enc = FakeEncoder()
    docs = long_texts(4, "web")
    store = FingerprintStore(tmp_path, codec="float16")
    comp = Compressor(SemTokenConfig(), encoder=enc, counter=WhitespaceCounter(), store=store)
    comp.compress(docs[:2], "question")  # stored by the parent
    alone = Compressor(SemTokenConfig(), encoder=enc, counter=WhitespaceCounter())
    want = [alone.compress(docs[:2], "question").texts, alone.compress(docs[2:], "q").texts]

    def body() -> str:
        hit = comp.compress(docs[:2], "question")
        miss = comp.compress(docs[2:], "q")
        return f"{[hit.texts, miss.texts] == want} {hit.encoder_calls} {miss.encoder_calls > 0}"

    assert run_in_child(body) == "True 0 True"
    assert len(store) == 2  # the child stored nothing
    store.close()
