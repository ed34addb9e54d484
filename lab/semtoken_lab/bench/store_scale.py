"""``semtoken-rag bench --store-scale N[,N...]``: the fingerprint store at corpus scale.

N chunk-sized documents of real texts and real PQ codes (:mod:`semtoken_lab.bench.
scale_corpus`) are written with ``FingerprintStore.write`` in batches of 64 (ingestion's batch)
into a store whose codec was trained first on real MiniLM fingerprints (the training documents
count among the N).  The writer receives ``EncodedDocument`` objects as ``encode_documents``
builds them; only the PQ assignment of each document is skipped, so the largest N measures the
writer and the lookups, not N PQ encodes (``bench_writer.py`` measures the encode).

Measured per N, each phase in its own process (timings and peak RSS are that phase's alone):

* **writer**: documents/s and words/s of ``store.write`` (building the documents is timed
  apart), the final ``close`` (WAL checkpoint), peak RSS;
* **size**: every file of the directory after close, per document and per 1k encoder tokens;
* **open**: with and without ``PRAGMA quick_check``, the database dropped from the page cache;
* **lookups** of 10 chunks (``store.lookup``), 200 queries of random documents: *exact* (the
  stored documents' own texts: found by key) and *sliced* (the same documents without their
  first and last 10-30 words: found by shingles, verified word by word); *fresh* drops the
  database from the OS page cache (``fsync`` + ``posix_fadvise(DONTNEED)``) before each query
  (SQLite's own cache of the open connection stays, as in a server), *warm* repeats them;
* **eviction** at the smallest N: the same documents into ``max_bytes`` = half their payload.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.realdocs import dir_bytes, percentiles, rss_mib

#: Sources of the recycled chunks (every text source of shared/data: fewer copies per chunk).
SCALE_SOURCES = ("narrativeqa", "hotpotqa", "scientific_qa", "gov_report", "meeting", "legal",
                 "natural_question", "coursera", "quality", "loogle", "essays")  # fmt: skip
BATCH = 64
QUERIES = 200
DB = "fingerprints.sqlite3"


@dataclass(frozen=True)
class EvictionRow:
    """The smallest N written into a store limited to half their payload."""

    max_bytes: int
    written: int
    documents_after: int
    payload_after: int
    bytes_on_disk: int
    write_docs_per_s: float
    oldest_tenth_present: float
    newest_tenth_present: float


@dataclass(frozen=True)
class ScaleRow:
    """One store size (times in ms unless named otherwise; lookups are of 10 chunks)."""

    documents: int
    codec: str
    words: int
    tokens: int
    copies_per_chunk: float
    write_s: float
    batch: int
    pragmas: dict[str, int]
    written_bytes_per_doc: float
    read_bytes_per_doc: float
    write_docs_per_s: float
    write_words_per_s: float
    generate_docs_per_s: float
    close_s: float
    bytes_on_disk: int
    bytes_per_doc: float
    bytes_per_1k_tokens: float
    open_ms_verify: float
    open_ms_no_verify: float
    lookups: dict[str, dict[str, float]]
    peak_rss_writer_mib: float
    peak_rss_lookup_mib: float
    eviction: EvictionRow | None = None
    profile: list[str] = field(default_factory=list)


def prepare(
    work: Path, root: Path | None, codec: Any, pool_chunks: int, cache: Path
) -> dict[str, Any]:
    """Chunks, their tokens, real fingerprints of a pool of them, a trained template store and
    the pool's codes (the :class:`ScaleCorpus` recipe) in ``work``."""
    from semtoken_rag.store import FingerprintStore
    from semtoken_rag.store.codebooks import runtime_codec

    from semtoken_lab.bench import realdocs
    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    chunks = [c for c in realdocs.chunk_documents(realdocs.load_documents(SCALE_SOURCES, root))
              if _marker_safe(c)]  # fmt: skip
    enc = realdocs.load_encoder()
    ids = enc.tokenizer(chunks, add_special_tokens=False, verbose=False)["input_ids"]
    tokens = np.array([len(x) for x in ids], np.int64)
    pool = chunks[:: max(1, len(chunks) // pool_chunks)][:pool_chunks]
    fps, encode_s = realdocs.cached_fingerprints(pool, enc, cache)
    docs = realdocs.document_fingerprints(pool, fps, enc.cache_id)
    with FingerprintStore(work / "template", codec=codec) as store:
        n_train, train_s = realdocs.train_store(store, docs, enc.cache_id)
        codecs = store.codec_set(enc.dim)
        stats = store.stats()
    vectors = np.concatenate([fp.vectors for fp in fps])
    codes = runtime_codec(codecs.book).encode(vectors)
    ScaleCorpus(chunks, tokens, codes, codecs, enc.cache_id).save(work)
    words = [len(fp.word_spans) for fp in fps]
    return {
        "chunks": len(chunks),
        "mean_chunk_words": float(np.mean([len(c.split()) for c in chunks])),
        "mean_chunk_tokens": float(tokens.mean()),
        "pool_chunks": len(pool),
        "pool_vectors": int(sum(words)),
        "pool_encode_s": encode_s,
        "codec": stats.codec,
        "train_min": int(codec.train_min),
        "train_docs": n_train,
        "train_s": train_s,
        "train_cos": float(codecs.book.train_cos),
        "encoder": enc.cache_id,
    }


def _marker_safe(chunk: str) -> bool:
    """Whether the chunk's first word is followed by whitespace (the marker that replaces it
    stays one word)."""
    from semtoken_rag.core.segment import find_words

    spans = find_words(chunk)
    return len(spans) > 1 and chunk[int(spans[0, 1])].isspace()


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


def child_write(args: dict[str, Any]) -> dict[str, Any]:
    """(child process) Write documents ``0 .. n - 1`` of the corpus; times, counts, RSS."""
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    corpus = ScaleCorpus.load(Path(args["work"]))
    n, batch = int(args["n"]), int(args.get("batch", BATCH))
    prof = _profiler(bool(args.get("profile")))
    gen_s = write_s = 0.0
    words = tokens = 0
    io0 = _io()
    with FingerprintStore(args["dir"], max_bytes=args.get("max_bytes")) as store:
        _apply_pragmas(store, args.get("pragmas") or {})
        for lo in range(0, n, batch):
            t0 = time.perf_counter()
            docs = corpus.documents(lo, min(n, lo + batch))
            t1 = time.perf_counter()
            prof.enable()
            store.write(docs)
            prof.disable()
            write_s += time.perf_counter() - t1
            gen_s += t1 - t0
            words += sum(d.n_words for d in docs)
            tokens += sum(corpus.tokens_of(i) for i in range(lo, min(n, lo + batch)))
            _progress(lo + len(docs), n, write_s)
        stats = store.stats()
        t0 = time.perf_counter()
    close_s = time.perf_counter() - t0
    io = {k: v - io0.get(k, 0) for k, v in _io().items()}
    return {"write_s": write_s, "generate_s": gen_s, "close_s": close_s, "words": words,
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


def _run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "semtoken_lab.bench.store_scale", kind, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"store-scale {kind} child failed (exit {res.returncode})")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _new_store(work: Path, name: str) -> Path:
    """A copy of the trained template store (its training documents included)."""
    target = work / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(work / "template", target)
    return target


def _lookup_summary(look: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for kind in ("exact", "sliced"):
        r = look[kind]
        fresh, warm = percentiles(r["fresh"]), percentiles(r["warm"])
        out[kind] = {"fresh_p50_ms": fresh["p50"], "fresh_p99_ms": fresh["p99"],
                     "warm_p50_ms": warm["p50"], "warm_p99_ms": warm["p99"],
                     "first_fresh_ms": float(r["fresh"][0]),
                     "hit_rate": min(r["fresh_hit_rate"], r["warm_hit_rate"])}  # fmt: skip
    return out


def measure(n: int, work: Path, info: dict[str, Any], opts: dict[str, Any]) -> ScaleRow:
    """One row: a store of ``n`` documents under ``work``, measured, then deleted."""
    store_dir = _new_store(work, f"store-{n}")
    gen = max(0, n - int(info["train_docs"]))
    base = {"work": str(work), "dir": str(store_dir), "n": gen}
    ins = _run_child("write", {**base, "batch": opts["batch"], "profile": opts["profile"],
                               "pragmas": opts["pragmas"]})  # fmt: skip
    on_disk = dir_bytes(store_dir)
    opened = {v: _run_child("lookup", {**base, "verify": v, "lookups": False}) for v in (1, 0)}
    look = _run_child("lookup", {**base, "verify": 0})
    evict = _eviction(work, gen, ins["payload"], opts) if opts["eviction"] else None
    shutil.rmtree(store_dir, ignore_errors=True)
    w = max(ins["write_s"], 1e-9)
    return ScaleRow(
        documents=ins["documents"], codec=info["codec"], words=ins["words"],
        tokens=ins["tokens"], copies_per_chunk=gen / info["chunks"], write_s=ins["write_s"],
        batch=opts["batch"], pragmas=opts["pragmas"],
        written_bytes_per_doc=ins["wchar"] / max(1, gen),
        read_bytes_per_doc=ins["rchar"] / max(1, gen),
        write_docs_per_s=gen / w, write_words_per_s=ins["words"] / w,
        generate_docs_per_s=gen / max(ins["generate_s"], 1e-9), close_s=ins["close_s"],
        bytes_on_disk=on_disk, bytes_per_doc=on_disk / max(1, ins["documents"]),
        bytes_per_1k_tokens=on_disk / max(1, ins["tokens"]) * 1000,
        open_ms_verify=opened[1]["open_ms"], open_ms_no_verify=opened[0]["open_ms"],
        lookups=_lookup_summary(look), peak_rss_writer_mib=ins["peak_rss_mib"],
        peak_rss_lookup_mib=look["peak_rss_mib"], eviction=evict, profile=ins["profile"],
    )  # fmt: skip


def _eviction(work: Path, n: int, payload: int, opts: dict[str, Any]) -> EvictionRow:
    from semtoken_rag.store import FingerprintStore

    from semtoken_lab.bench.scale_corpus import ScaleCorpus

    store_dir = _new_store(work, f"evict-{n}")
    limit = payload // 2
    ins = _run_child("write", {"work": str(work), "dir": str(store_dir), "n": n,
                               "batch": opts["batch"], "pragmas": opts["pragmas"],
                               "max_bytes": limit})  # fmt: skip
    corpus = ScaleCorpus.load(work)
    tenth = max(1, n // 10)
    with FingerprintStore(store_dir) as s:
        old = s.contains([corpus.key(i) for i in range(tenth)])
        new = s.contains([corpus.key(i) for i in range(n - tenth, n)])
        stats = s.stats()
    row = EvictionRow(
        max_bytes=limit, written=n, documents_after=stats.documents,
        payload_after=stats.payload_bytes, bytes_on_disk=dir_bytes(store_dir),
        write_docs_per_s=n / max(ins["write_s"], 1e-9),
        oldest_tenth_present=len(old) / tenth, newest_tenth_present=len(new) / tenth,
    )  # fmt: skip
    shutil.rmtree(store_dir, ignore_errors=True)
    return row


def run_store_scale(
    sizes: list[int],
    out: Path,
    codec: str | None = None,
    data_root: Path | None = None,
    work: Path | None = None,
    *,
    pool_chunks: int = 240,
    train_min: int | None = None,
    batch: int = BATCH,
    profile: bool = False,
    pragmas: dict[str, int] | None = None,
) -> list[ScaleRow]:
    """Measure every size (smallest first, with the eviction run); write ``store_scale.json``
    and ``store_scale.md`` into ``out`` after each size.

    Args:
        pool_chunks: Real chunks encoded with MiniLM (their codes are recycled).
        train_min: Override the codec's ``train_min`` (small smoke runs).
        batch: Documents per ``store.write`` (one transaction; ingestion's default is 64).
        profile: cProfile the writer's ``store.write`` calls (top functions in the JSON).
        pragmas: Experiment: PRAGMAs set on the writer's connection (see :data:`PRAGMAS`).
    """
    from semtoken_rag.store import get_codec

    spec = get_codec(codec)
    if train_min is not None:
        spec = spec.with_options(train_min=train_min)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="semtoken-store-scale-", dir=work))
    rows: list[ScaleRow] = []
    try:
        info = prepare(tmp, data_root, spec, pool_chunks, out / "cache")
        for i, n in enumerate(sorted(sizes)):
            opts = {"batch": batch, "profile": profile, "eviction": i == 0,
                    "pragmas": dict(pragmas or {})}  # fmt: skip
            rows.append(measure(n, tmp, info, opts))
            write(rows, info, out)
            r = rows[-1]
            print(f"[store-scale] {n:,} documents: {r.write_docs_per_s:,.0f} docs/s written, "
                  f"{r.bytes_per_1k_tokens:,.0f} B per 1k tokens", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def write(rows: list[ScaleRow], info: dict[str, Any], out: Path) -> None:
    """``store_scale.json`` and ``store_scale.md``."""
    from semtoken_lab.bench.scale_report import markdown
    from semtoken_lab.bench.timing import machine_info

    data = {"machine": machine_info(), "workload": info, "rows": [asdict(r) for r in rows]}
    (out / "store_scale.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    (out / "store_scale.md").write_text("\n".join(markdown(rows, info)) + "\n", encoding="utf-8")


if __name__ == "__main__":  # child processes of :func:`measure`
    kind, payload = sys.argv[1], json.loads(sys.argv[2])
    result = {"write": child_write, "lookup": child_lookup}[kind](payload)
    print(json.dumps(result))
