"""Hostile review of the store when the disk fills up or a file may not grow.

Simulated without root: a forked child lowers ``RLIMIT_FSIZE`` (its soft limit, so it can lift
it again: "space returns") and ignores ``SIGXFSZ``, so a write past the limit fails with
``EFBIG`` and SQLite reports an I/O error, as it reports ``SQLITE_FULL`` on a full disk.
Contract (docs/store.md, "Crash safety"): a failed write is a typed :class:`StoreError` or a
documented warning, never a raw ``sqlite3``/``OSError``; a write that committed is reported as
stored; a lookup's result is served; after space returns the same object and a fresh open work,
``verify()`` is ``[]``, nothing committed is lost, and a full disk is never taken for damage.

Children report through a pipe and end with ``os._exit``, never returning into pytest.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.store import FingerprintStore, db
from tests.fakes import FakeEncoder, WhitespaceCounter
from tests.store_helpers import (
    DB_NAME,
    SMALL_PQ,
    close_enough,
    encoded,
    expected_slice,
    fill,
    keys,
    long_texts,
    run_in_child,
    sql,
    words_slice,
)

resource = pytest.importorskip("resource")
pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGXFSZ"), reason="needs fork and SIGXFSZ"
)


def _in_child(body: Callable[[], dict[str, Any]], timeout: float = 120.0) -> dict[str, Any]:
    """Run ``body`` in a forked child that ignores ``SIGXFSZ``; its report, or ``{"error": ...}``
    when it raised (the outcome is the test's subject)."""

    def run() -> str:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            report = body()
        except BaseException as exc:
            report = {"error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"}
        _unlimit()
        return json.dumps(report, default=str)

    out = run_in_child(run, timeout)
    if out == "hung":
        pytest.fail("the child hung")
    return json.loads(out)


def _limit(size: int) -> None:
    """No file of this process may grow past ``size`` bytes (as when the disk is full)."""
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))


def _unlimit() -> None:
    """Space returns."""
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


def _attempt(report: dict[str, Any], name: str, call: Callable[[], Any]) -> None:
    """``report[name]``: what ``call`` returned, or the exception it raised."""
    try:
        report[name] = call()
    except Exception as exc:
        report[name] = f"raised {type(exc).__module__}.{type(exc).__name__}: {exc}"


def _reopened(directory: Path, enc: FakeEncoder, docs: list[str]) -> dict[str, Any]:
    """What a fresh open (space back) finds: documents, problems, ``docs`` all stored."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FingerprintStore(directory) as store:
            found = store.contains(keys(enc, docs))
            return {
                "documents": len(store),
                "verify": store.verify(),
                "all_stored": len(found) == len(set(keys(enc, docs))),
                "warnings": [str(w.message) for w in caught],
            }


def test_a_write_that_trains_then_meets_a_full_disk_reports_its_documents_stored(
    tmp_path: Path,
) -> None:
    """The write that trains the codec commits, then frees the float16 staging pages with
    ``PRAGMA incremental_vacuum``, which writes to the log.  A disk full at that moment raised
    ``StoreError("fingerprint store write failed")`` for documents that were committed: an
    ingestion stopped there and lost its report, and ``put`` logged "not stored"."""
    directory = tmp_path / "store"
    enc = FakeEncoder()
    first, second, third = long_texts(10, "a"), long_texts(10, "b"), long_texts(3, "c")
    real = db.transaction

    @contextlib.contextmanager
    def full_after_commit(conn: sqlite3.Connection, mode: str = "IMMEDIATE") -> Iterator[None]:
        with real(conn, mode):
            yield
        if mode == "IMMEDIATE":  # the log may not grow past what the commit wrote
            _limit(os.path.getsize(directory / (DB_NAME + "-wal")))

    def body() -> dict[str, Any]:
        report: dict[str, Any] = {}
        store = FingerprintStore(directory, codec=SMALL_PQ)
        fill(store, enc, first)  # 600 staged words: the next 600 reach train_min (1,024)
        batch = encoded(store, enc, second)
        db.transaction = full_after_commit
        try:
            _attempt(report, "written", lambda: store.write(batch))
        finally:
            db.transaction = real
            _unlimit()
        report["free_pages"] = sql(directory, "PRAGMA freelist_count")[0][0]
        report["trained"] = store.stats().trained
        _attempt(report, "then", lambda: fill(store, enc, third).encoded)
        report["verify"] = store.verify()
        store.close()
        report["reopened"] = _reopened(directory, enc, first + second + third)
        return report

    report = _in_child(body)
    assert report.get("written") == 10, report
    assert report["free_pages"] > 0, report  # the vacuum did meet the full disk
    assert report["trained"] and report["then"] == 3 and report["verify"] == [], report
    reopened = report["reopened"]
    assert reopened["documents"] == 23 and reopened["all_stored"], report
    assert reopened["verify"] == [] and reopened["warnings"] == [], report


def test_a_lookup_that_meets_damage_on_a_full_disk_serves_the_rest(tmp_path: Path) -> None:
    """A lookup that finds a damaged document removes it in a write; on a full disk that
    write failed and the lookup raised ``StoreError``: every chunk of the call lost, and
    ``compress`` failed, for a clean-up a later lookup can do (as when another process holds
    the write lock).  The damaged document is a miss either way."""
    directory = tmp_path / "store"
    enc = FakeEncoder()
    docs = long_texts(10, "a")
    chunks = [words_slice(d, 5, 35) for d in docs]

    def body() -> dict[str, Any]:
        report: dict[str, Any] = {}
        with FingerprintStore(directory, codec="float16") as store:
            fill(store, enc, docs)
        sql(directory, "UPDATE blocks SET checksum = zeroblob(32) WHERE id = 1 << 20")
        store = FingerprintStore(directory, verify_on_open=False)
        comp = Compressor(SemTokenConfig(), encoder=enc, store=store, counter=WhitespaceCounter())
        expected = [expected_slice(fp, 5, c) for fp, c in zip(enc.encode_texts(docs), chunks)]
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            _limit(1)  # nothing may grow: the log cannot take the removal
            _attempt(
                report,
                "served",
                lambda: sum(f is not None for f in store.lookup(chunks, enc.cache_id)),
            )
            _attempt(report, "compressed", lambda: type(comp.compress(chunks, "river")).__name__)
            _unlimit()
            found = store.lookup(chunks, enc.cache_id)
        report["served_after"] = sum(
            close_enough(f, r, 0.99) for f, r in zip(found, expected, strict=True) if f is not None
        )
        report["documents"] = len(store)
        report["verify"] = store.verify()
        store.close()
        report["reopened"] = _reopened(directory, enc, docs[1:])
        return report

    report = _in_child(body)
    assert report.get("served") == 9, report
    assert report["compressed"] == "CompressionResult", report
    assert report["served_after"] == 9 and report["verify"] == [], report
    assert report["documents"] == 9, report  # removed by the lookup once space returned
    reopened = report["reopened"]
    assert reopened["all_stored"] and reopened["verify"] == [], report


def test_a_damaged_store_on_a_full_disk_is_a_store_error(tmp_path: Path) -> None:
    """Damage found on open is quarantined and an empty store started; on a full disk (a copy
    the full disk cut short) starting it failed with a raw ``sqlite3.OperationalError`` out of
    ``FingerprintStore()``.  Once space returns the next open starts the empty store."""
    directory = tmp_path / "store"
    directory.mkdir()
    (directory / DB_NAME).write_bytes(b"not a database " * 1000)

    def body() -> dict[str, Any]:
        report: dict[str, Any] = {}
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            _limit(1)
            _attempt(report, "opened", lambda: FingerprintStore(directory).close())
            _unlimit()
        report["quarantined"] = [
            p.name for q in directory.glob("quarantine-*") for p in q.iterdir()
        ]
        report["reopened"] = _reopened(directory, FakeEncoder(), [])
        return report

    report = _in_child(body)
    opened = str(report.get("opened"))
    assert opened.startswith("raised semtoken_rag.errors.StoreError"), report
    assert "damaged" in opened and "no empty store could be started" in opened, report
    assert report["quarantined"] == [DB_NAME], report
    reopened = report["reopened"]
    assert reopened["documents"] == 0 and reopened["verify"] == [], report
