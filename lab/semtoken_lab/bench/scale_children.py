"""The child processes of ``semtoken-rag bench --store-scale`` (one per phase, so that
timings and peak RSS are that phase's alone): the writer and the lookups.

Run as ``python -m semtoken_lab.bench.scale_children KIND JSON``; prints one JSON line.  The
writer's documents are built by a producer process (:func:`_produce`) and arrive pickled, so
the writer process holds and does nothing but the store's work (its RSS, its I/O counters).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.realdocs import rss_mib

BATCH = 64
QUERIES = 200
DB = "fingerprints.sqlite3"


def _drop_cache(path: Path) -> None:
    """Write back and drop the database's pages from the OS page cache."""
    for name in (DB, DB + "-wal"):
        f = path / name
        if f.exists() and hasattr(os, "posix_fadvise"):
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _produce(work: str, n: int, batch: int, queue: Any) -> None:
    """(producer process) Put ``(documents, tokens, seconds)`` batches on the queue, then
    ``None``: the writer's process only unpickles and writes."""
    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    corpus = ScaleCorpus.load(Path(work))
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        t0 = time.perf_counter()
        docs = corpus.documents(lo, hi)
        tokens = sum(corpus.tokens_of(i) for i in range(lo, hi))
        queue.put((docs, tokens, time.perf_counter() - t0))
    queue.put(None)


def _batches(work: str, n: int, batch: int) -> Iterator[tuple[list[Any], int, float]]:
    """The producer's batches, as they come (it runs one batch ahead or more)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    proc = ctx.Process(target=_produce, args=(work, n, batch, queue), daemon=True)
    proc.start()
    try:
        while (item := queue.get()) is not None:
            yield item
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.terminate()


def child_write(args: dict[str, Any]) -> dict[str, Any]:
    """(child process) Write documents ``0 .. n - 1`` of the corpus (built by a producer
    process); times, counts, I/O, RSS."""
    from semtoken_rag.store import FingerprintStore

    n, batch = int(args["n"]), int(args.get("batch", BATCH))
    prof = _profiler(bool(args.get("profile")))
    gen_s = write_s = 0.0
    done = words = tokens = 0
    io0, t_start = _io(), time.perf_counter()
    with FingerprintStore(args["dir"], max_bytes=args.get("max_bytes")) as store:
        _apply_pragmas(store, args.get("pragmas") or {})
        for docs, n_tokens, seconds in _batches(str(args["work"]), n, batch):
            t1 = time.perf_counter()
            prof.enable()
            store.write(docs)
            prof.disable()
            write_s += time.perf_counter() - t1
            gen_s += seconds
            done += len(docs)
            words += sum(d.n_words for d in docs)
            tokens += n_tokens
            _progress(done, n, write_s)
        stats = store.stats()
        t0 = time.perf_counter()
    close_s = time.perf_counter() - t0
    io = {k: v - io0.get(k, 0) for k, v in _io().items()}
    return {"write_s": write_s, "generate_s": gen_s, "close_s": close_s, "words": words,
            "wall_s": time.perf_counter() - t_start,
            "tokens": tokens, "documents": stats.documents, "payload": stats.payload_bytes,
            "peak_rss_mib": rss_mib(), "profile": _profile_lines(prof),
            "wchar": io.get("wchar", 0), "rchar": io.get("rchar", 0)}  # fmt: skip


#: PRAGMAs ``--pragmas`` may set on the writer's connection (an experiment, not the library's
#: settings: they are applied to the store's private connection after it opened).
PRAGMAS = ("cache_size", "wal_autocheckpoint", "mmap_size", "synchronous")


def _apply_pragmas(store: Any, pragmas: dict[str, int]) -> None:
    for name, value in pragmas.items():
        if name not in PRAGMAS:
            raise ValueError(f"unsupported PRAGMA {name!r} (allowed: {', '.join(PRAGMAS)})")
        store._conn.execute(f"PRAGMA {name}={int(value)}")


def _io() -> dict[str, int]:
    """This process's I/O counters (``/proc/self/io``: ``wchar`` = bytes passed to write
    calls, the WAL and the checkpoints included); {} where unavailable."""
    try:
        lines = Path("/proc/self/io").read_text().splitlines()
    except OSError:
        return {}
    return {k.strip(): int(v) for k, v in (line.split(":") for line in lines)}


class _NoProfile:
    def enable(self) -> None: ...

    def disable(self) -> None: ...


def _profiler(on: bool) -> Any:
    import cProfile

    return cProfile.Profile() if on else _NoProfile()


def _profile_lines(prof: Any, top: int = 25) -> list[str]:
    """The top functions by cumulative time (``pstats``), as lines; [] when not profiled."""
    if isinstance(prof, _NoProfile):
        return []
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    return [line for line in buf.getvalue().splitlines() if line.strip()]


def _progress(done: int, total: int, write_s: float) -> None:
    step = max(BATCH, total // 10 // BATCH * BATCH)
    if done % step < BATCH or done == total:
        print(f"[store-scale] wrote {done:,}/{total:,} ({done / max(write_s, 1e-9):,.0f} docs/s "
              "in write)", file=sys.stderr, flush=True)  # fmt: skip


def child_lookup(args: dict[str, Any]) -> dict[str, Any]:
    """(child process) Open time; then exact and sliced lookups, fresh and warm."""
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    path, n = Path(args["dir"]), int(args["n"])
    corpus = ScaleCorpus.load(Path(args["work"]))
    rng = np.random.default_rng(int(args.get("seed", 0)) + 1)
    picks = rng.integers(n, size=(int(args.get("queries", QUERIES)), 10)).tolist()
    queries = {
        "exact": [[corpus.text(i) for i in q] for q in picks],
        "sliced": [[corpus.sliced(i, rng) for i in q] for q in picks],
    }
    _drop_cache(path)
    t0 = time.perf_counter()
    store = FingerprintStore(path, verify_on_open=bool(args["verify"]))
    out: dict[str, Any] = {"open_ms": (time.perf_counter() - t0) * 1e3}
    if args.get("lookups", True):
        for kind, qs in queries.items():
            out[kind] = _timed_lookups(store, path, qs, corpus.encoder)
    store.close()
    out["peak_rss_mib"] = rss_mib()
    return out


def _timed_lookups(
    store: Any, path: Path, queries: list[list[str]], encoder: str
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for phase in ("fresh", "warm"):
        times, hits = [], 0
        for q in queries:
            if phase == "fresh":
                _drop_cache(path)
            t0 = time.perf_counter()
            got = store.lookup(q, encoder)
            times.append((time.perf_counter() - t0) * 1e3)
            hits += sum(g is not None for g in got)
        res[phase] = times
        res[f"{phase}_hit_rate"] = hits / max(1, 10 * len(queries))
    return res


if __name__ == "__main__":  # see the module docstring
    kind, payload = sys.argv[1], json.loads(sys.argv[2])
    result = {"write": child_write, "lookup": child_lookup}[kind](payload)
    print(json.dumps(result))
