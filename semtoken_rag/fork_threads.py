"""Native thread pools in a forked child (gunicorn ``--preload``, a fork ``multiprocessing`` pool).

OpenMP's (libgomp's) worker threads do not survive ``fork``: once the parent has run a parallel
region, the child's next one waits for them for ever (faiss issue #5206; torch's own
``DataLoader`` sets one thread in its forked workers for the same reason).  So a library the
engine runs on (torch for the encoder, FAISS for the store's codecs) runs on one thread in a
forked child, from the first call on.
"""

from __future__ import annotations

import os
import sys


def one_thread_after_fork(module: str, setter: str) -> None:
    """In every child forked from now on, call ``module.setter(1)`` if ``module`` was imported
    (``torch``/``set_num_threads``, ``faiss``/``omp_set_num_threads``); nothing else changes."""

    def reset() -> None:
        set_threads = getattr(sys.modules.get(module), setter, None)
        if callable(set_threads):
            set_threads(1)

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=reset)
