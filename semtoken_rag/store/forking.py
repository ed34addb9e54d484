"""A store object used in a process forked after it was opened (gunicorn ``--preload``, a
``multiprocessing`` pool started by fork).

SQLite forbids using a connection in a child process, so a store object notices the fork by its
process id (as SQLAlchemy's pool does) and opens a read-only connection of its own (writes stay
refused: the parent's file lock cannot be taken there, :func:`~.recovery.acquire_lock`).

Right after the fork (:func:`_in_child`) each store object gets a new thread lock (one a
parent's thread held is never released in the child), zero counters and no LRU buffer.  Its
inherited connection is closed unless a thread was inside it: while it stays open no connection
the child opens to that file takes a lock (SQLite's bookkeeping is per process and file), and
the parent's ``close`` would delete the write-ahead log under the children.  Closing it
checkpoints nothing (the parent's shared lock refuses it); one a thread was inside is kept
unused, as closing it would roll back that thread's transaction in the shared log index.
FAISS runs on one thread in the child (:mod:`~semtoken_rag.fork_threads`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import weakref
from typing import Any

from semtoken_rag.fork_threads import one_thread_after_fork
from semtoken_rag.store import recovery, writes

#: A ``FingerprintStore`` (not imported: store.py imports this module).
Store = Any

#: Connections inherited from a parent process: kept open and unused for the process's life.
_INHERITED: list[sqlite3.Connection] = []
#: Store objects of this process, made usable in any child forked from it (:func:`_in_child`).
_STORES: weakref.WeakSet[Store] = weakref.WeakSet()
#: Store objects a thread of the parent was inside when this process was forked.
_BUSY: weakref.WeakSet[Store] = weakref.WeakSet()


def track(store: Store) -> None:
    """Have ``store`` reset in every process forked from this one (:func:`_in_child`)."""
    _STORES.add(store)


def _leave_inherited(conn: sqlite3.Connection) -> None:
    """Keep ``conn`` (the parent's) open and unused in this process."""
    _INHERITED.append(conn)


def _in_child() -> None:
    """After a fork, in the child: reset each store object (module docstring); :func:`adopt`
    opens its own connection at first use."""
    for store in list(_STORES):
        # held by a thread of the parent (mid-lookup, mid-write): it does not exist here
        busy = not store._lock.acquire(blocking=False)
        store._lock = threading.RLock()
        store.hits = store.misses = 0  # "this process's lookups"
        if busy:
            _BUSY.add(store)
        if store._closed or store._file is None:
            continue  # in memory: the child's own copy (a busy one is replaced at first use)
        store._touches = writes.Touches(math.inf)  # its writes are refused: buffer none
        if busy:
            _leave_inherited(store._conn)
        else:
            with contextlib.suppress(sqlite3.Error):
                store._conn.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
one_thread_after_fork("faiss", "omp_set_num_threads")  # training, large sq batches


def adopt(store: Store) -> None:
    """In a forked child, at a store object's first use: a read-only connection of its own (a
    store in memory keeps its copy, or a new empty one if a parent's thread was inside it).  A
    failed open changes nothing: the next use tries again.

    Raises:
        StoreError: the database cannot be opened read-only.
    """
    file = store._file
    if file is not None:
        own = recovery.ReadOnlyFile(file.directory, file.timeout, False, file.spec)
        store._conn, store._books = own.open()
        store._file = own
    elif store in _BUSY:
        _leave_inherited(store._conn)
        store._conn, store._books = recovery.open_new(None, 5.0, store._books.spec)
    _BUSY.discard(store)
    store._pid = os.getpid()
    store._touches.clear()  # its refreshes name rows of the parent's connection
