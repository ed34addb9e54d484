"""Threads in a forked child (gunicorn ``--preload``, a fork ``multiprocessing`` pool).

Only the forking thread exists in the child, so nothing the parent's other threads held there is
ever released:

- OpenMP's (libgomp's) worker threads: once the parent has run a parallel region, the child's
  next one waits for them for ever (faiss issue #5206; torch's ``DataLoader`` sets one thread in
  its forked workers for the same reason).  So the libraries the engine runs on (torch for the
  encoder, FAISS for the store's codecs) run on one thread in a forked child.
- Locks: one a parent's thread held at the fork (mid-encode, mid-load) stays held, and the
  child's first call waited for ever.  The engine's locks are :class:`ForkSafeLock`\\ s, new in
  every forked child.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from types import TracebackType
from typing import Any


def one_thread_after_fork(module: str, setter: str) -> None:
    """In every child forked from now on, call ``module.setter(1)`` if ``module`` was imported
    (``torch``/``set_num_threads``, ``faiss``/``omp_set_num_threads``); nothing else changes."""

    def reset() -> None:
        set_threads = getattr(sys.modules.get(module), setter, None)
        if callable(set_threads):
            set_threads(1)

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=reset)


class ForkSafeLock:
    """A ``threading.Lock`` (``RLock`` with ``reentrant``), used with ``with``, that every forked
    child gets new and unlocked (module docstring)."""

    def __init__(self, *, reentrant: bool = False) -> None:
        self._make: Any = threading.RLock if reentrant else threading.Lock
        self._lock = self._make()
        _LOCKS.add(self)

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.release()


#: Every :class:`ForkSafeLock` of this process.
_LOCKS: weakref.WeakSet[ForkSafeLock] = weakref.WeakSet()


def _renew_locks() -> None:
    for lock in list(_LOCKS):
        lock._lock = lock._make()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks)
