"""``semtoken-rag bench --store-scale N[,N...]``: the fingerprint store at corpus scale.

Synthetic entries with realistic shapes go into a persistent store through the public API
(``put_many``, batches of 64 like ``add_texts``):

* **shapes**: ``(words, encoder tokens)`` pairs drawn from real chunks of ``shared/data``
  (NarrativeQA, HotpotQA, L-Eval scientific_qa, the essays) cut the way ``semtoken-rag ingest``
  cuts them by default (256 words, overlap 32);
* **vectors**: real MiniLM word fingerprints of those documents (a pool), each draw plus
  Gaussian noise (sigma 0.02 per dimension, cosine ~0.93 to its source) and renormalised, so the
  codec trains and encodes on real statistics without storing the same vector twice;
* **spans**: monotonic offsets with word lengths 1 + Poisson(4) and one-character gaps.

Measured per N, each in its own process so timings and peak RSS are the store's alone: insert
throughput (after the codec's training, which is reported apart), bytes on disk per entry and per
1k encoder tokens (every file of the directory), open time with and without ``PRAGMA
quick_check``, ``get_many`` latency of 10-chunk queries of random keys in a fresh process (the
database file evicted from the OS page cache first with ``posix_fadvise(DONTNEED)``) and warm
(the same queries again), peak RSS; and, at the smallest N, the behaviour at ``max_bytes`` (half
the payload): insert throughput with eviction, what is kept, and the file size.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.cases import DEFAULT_DATA

#: Documents whose chunks give the shapes and the vector pool (relative to the data root).
SOURCES = (
    ("narrativeqa/test.jsonl", "context"),
    ("hotpotqa_dev_sample/dev.jsonl", "context"),
    ("leval/scientific_qa.jsonl", "context"),
    ("needle_haystack/essays.jsonl", "text"),
)
NOISE = 0.02
BATCH = 64
QUERIES = 200


@dataclass(frozen=True)
class EvictionRow:
    """Inserting ``inserted`` entries into a store limited to half their payload."""

    max_bytes: int
    inserted: int
    entries_after: int
    payload_after: int
    bytes_on_disk: int
    insert_entries_per_s: float
    oldest_tenth_present: float
    newest_tenth_present: float


@dataclass(frozen=True)
class ScaleRow:
    """One store size (times in ms unless named otherwise)."""

    entries: int
    codec: str
    vectors: int
    tokens: int
    train_s: float
    insert_s: float
    insert_entries_per_s: float
    insert_vectors_per_s: float
    bytes_on_disk: int
    bytes_per_entry: float
    bytes_per_1k_tokens: float
    open_ms_verify: float
    open_ms_no_verify: float
    first_query_ms: float
    get_p50_ms_cold: float
    get_p99_ms_cold: float
    get_p50_ms_warm: float
    get_p99_ms_warm: float
    peak_rss_insert_mib: float
    peak_rss_lookup_mib: float
    eviction: EvictionRow | None = None


def _chunks(root: Path) -> list[str]:
    from semtoken_rag.store import chunk_words

    seen: set[str] = set()
    out: list[str] = []
    for rel, key in SOURCES:
        path = root / rel
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line)[key] if line.strip() else ""
                if text and text not in seen:
                    seen.add(text)
                    out.extend(chunk_words(text, 256, 32))
    return out


def prepare(work: Path, root: Path | None = None, pool_chunks: int = 240) -> dict[str, Any]:
    """Write ``shapes.npy`` (words, tokens per real chunk) and ``pool.npy`` (real MiniLM word
    fingerprints of ``pool_chunks`` chunks spread over the sources) into ``work``."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.core.segment import find_words

    chunks = _chunks(root or DEFAULT_DATA)
    comp = Compressor(SemTokenConfig())
    shapes = np.array([(len(find_words(c)), comp.count_tokens(c)) for c in chunks], np.int64)
    step = max(1, len(chunks) // pool_chunks)
    fps = comp.encoder.encode_texts(chunks[::step][:pool_chunks])
    pool = np.concatenate([fp.vectors for fp in fps]).astype(np.float32)
    np.save(work / "shapes.npy", shapes)
    np.save(work / "pool.npy", pool)
    return {
        "chunks": len(chunks),
        "mean_words": float(shapes[:, 0].mean()),
        "mean_tokens": float(shapes[:, 1].mean()),
        "pool_vectors": len(pool),
    }


def _key(seed: int, i: int) -> str:
    return hashlib.sha256(f"synthetic-{seed}-{i}".encode()).hexdigest()


def _entries(work: Path, lo: int, hi: int, seed: int) -> list[tuple[str, Any, int]]:
    """Entries ``lo..hi`` of the synthetic corpus: ``(key, fingerprints, tokens)``."""
    from semtoken_rag.fingerprints import ChunkFingerprints

    shapes = np.load(work / "shapes.npy", mmap_mode="r")
    pool = np.load(work / "pool.npy", mmap_mode="r")
    out = []
    for i in range(lo, hi):
        rng = np.random.default_rng([seed, i])
        words, tokens = shapes[int(rng.integers(len(shapes)))]
        v = pool[rng.integers(len(pool), size=int(words))] + NOISE * rng.standard_normal(
            (int(words), pool.shape[1]), dtype=np.float32
        )
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        lengths = 1 + rng.poisson(4, size=int(words))
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
        spans = np.stack([starts, starts + lengths], axis=1).astype(np.int64)
        out.append((_key(seed, i), ChunkFingerprints(v.astype(np.float32), spans), int(tokens)))
    return out


def _rss_mib() -> float:
    """Peak RSS of this process image (``VmHWM``: ``ru_maxrss`` would include the parent's
    pages the child held between fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_insert(args: dict[str, Any]) -> dict[str, Any]:
    """(child process) Insert ``n`` entries; timings, counts, peak RSS."""
    from semtoken_rag.store import FingerprintStore

    work, n, seed = Path(args["work"]), int(args["n"]), int(args["seed"])
    t_start = time.perf_counter()
    train_s = vectors = tokens = 0.0
    gen_s = 0.0
    with FingerprintStore(
        args["dir"], codec=args["codec"], max_bytes=args.get("max_bytes"), use_gpu="never"
    ) as store:
        trained = store.stats().trained
        for lo in range(0, n, BATCH):
            g0 = time.perf_counter()
            batch = _entries(work, lo, min(n, lo + BATCH), seed)
            gen_s += time.perf_counter() - g0
            t0 = time.perf_counter()
            store.put_many([(k, fp) for k, fp, _ in batch], encoder_id="synthetic")
            if not trained:
                train_s += time.perf_counter() - t0
                trained = store.stats().trained
            vectors += sum(fp.n_words for _, fp, _ in batch)
            tokens += sum(t for _, _, t in batch)
        stats = store.stats()
    total = time.perf_counter() - t_start - gen_s
    return {
        "insert_s": total,
        "train_s": train_s,
        "generate_s": gen_s,
        "vectors": int(vectors),
        "tokens": int(tokens),
        "entries": stats.entries,
        "payload": stats.payload_bytes,
        "trained": stats.trained,
        "peak_rss_mib": _rss_mib(),
    }


def _evict_from_page_cache(path: Path) -> None:
    for name in ("fingerprints.sqlite3", "fingerprints.sqlite3-wal"):
        f = path / name
        if f.exists() and hasattr(os, "posix_fadvise"):
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def child_lookup(args: dict[str, Any]) -> dict[str, Any]:
    """(child process) Open time, then 10-chunk ``get_many`` latencies cold and warm."""
    from semtoken_rag.store import FingerprintStore

    path, n, seed = Path(args["dir"]), int(args["n"]), int(args["seed"])
    rng = np.random.default_rng(seed + 1)
    queries = [[_key(seed, int(i)) for i in rng.integers(n, size=10)] for _ in range(QUERIES)]
    _evict_from_page_cache(path)
    t0 = time.perf_counter()
    store = FingerprintStore(path, verify_on_open=bool(args["verify"]), use_gpu="never")
    open_ms = (time.perf_counter() - t0) * 1e3
    out: dict[str, Any] = {"open_ms": open_ms}
    if args.get("queries", True):
        for phase in ("cold", "warm"):
            times = []
            for q in queries:
                t0 = time.perf_counter()
                got = store.get_many(q)
                times.append((time.perf_counter() - t0) * 1e3)
                if any(g is None for g in got):
                    raise SystemExit("a stored entry was not found")
            out[phase] = times
    store.close()
    out["peak_rss_mib"] = _rss_mib()
    return out


def _run_child(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "semtoken_lab.bench.store_scale", kind, json.dumps(args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"store-scale {kind} child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def measure(n: int, work: Path, codec: str, seed: int = 0, eviction: bool = False) -> ScaleRow:
    """One row: build a store of ``n`` entries under ``work`` and measure it (then delete it)."""
    store_dir = work / f"store-{n}"
    shutil.rmtree(store_dir, ignore_errors=True)
    ins = _run_child("insert", {"work": str(work), "dir": str(store_dir), "n": n,
                                "codec": codec, "seed": seed})  # fmt: skip
    on_disk = _dir_bytes(store_dir)
    base = {"dir": str(store_dir), "n": n, "seed": seed}
    opened = {v: _run_child("lookup", {**base, "verify": v, "queries": False}) for v in (1, 0)}
    look = _run_child("lookup", {**base, "verify": 0})
    cold, warm = np.array(look["cold"]), np.array(look["warm"])
    evict = _eviction(work, n, codec, seed, ins["payload"]) if eviction else None
    shutil.rmtree(store_dir, ignore_errors=True)
    steady = max(ins["insert_s"] - ins["train_s"], 1e-9)
    return ScaleRow(
        entries=n,
        codec=codec,
        vectors=ins["vectors"],
        tokens=ins["tokens"],
        train_s=ins["train_s"],
        insert_s=ins["insert_s"],
        insert_entries_per_s=n / steady,
        insert_vectors_per_s=ins["vectors"] / steady,
        bytes_on_disk=on_disk,
        bytes_per_entry=on_disk / n,
        bytes_per_1k_tokens=on_disk / ins["tokens"] * 1000,
        open_ms_verify=opened[1]["open_ms"],
        open_ms_no_verify=opened[0]["open_ms"],
        first_query_ms=float(cold[0]),
        get_p50_ms_cold=float(np.percentile(cold, 50)),
        get_p99_ms_cold=float(np.percentile(cold, 99)),
        get_p50_ms_warm=float(np.percentile(warm, 50)),
        get_p99_ms_warm=float(np.percentile(warm, 99)),
        peak_rss_insert_mib=ins["peak_rss_mib"],
        peak_rss_lookup_mib=look["peak_rss_mib"],
        eviction=evict,
    )


def _eviction(work: Path, n: int, codec: str, seed: int, payload: int) -> EvictionRow:
    from semtoken_rag.store import FingerprintStore

    store_dir = work / f"evict-{n}"
    shutil.rmtree(store_dir, ignore_errors=True)
    limit = payload // 2
    ins = _run_child("insert", {"work": str(work), "dir": str(store_dir), "n": n,
                                "codec": codec, "seed": seed, "max_bytes": limit})  # fmt: skip
    tenth = max(1, n // 10)
    with FingerprintStore(store_dir, use_gpu="never") as s:
        old = s.get_many([_key(seed, i) for i in range(tenth)])
        new = s.get_many([_key(seed, i) for i in range(n - tenth, n)])
        stats = s.stats()
    row = EvictionRow(
        max_bytes=limit,
        inserted=n,
        entries_after=stats.entries,
        payload_after=stats.payload_bytes,
        bytes_on_disk=_dir_bytes(store_dir),
        insert_entries_per_s=n / max(ins["insert_s"] - ins["train_s"], 1e-9),
        oldest_tenth_present=sum(g is not None for g in old) / tenth,
        newest_tenth_present=sum(g is not None for g in new) / tenth,
    )
    shutil.rmtree(store_dir, ignore_errors=True)
    return row


def run_store_scale(
    sizes: list[int],
    out: Path,
    codec: str | None = None,
    data_root: Path | None = None,
    work: Path | None = None,
) -> list[ScaleRow]:
    """Measure every size (smallest first, with the eviction run); write ``store_scale.json``
    and ``store_scale.md`` into ``out`` after each size."""
    from semtoken_rag.store import DEFAULT_CODEC

    codec = codec or DEFAULT_CODEC
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="semtoken-store-scale-", dir=work))
    rows: list[ScaleRow] = []
    try:
        info = prepare(tmp, data_root)
        for i, n in enumerate(sorted(sizes)):
            rows.append(measure(n, tmp, codec, eviction=i == 0))
            write(rows, info, out)
            r = rows[-1]
            print(
                f"[store-scale] {n} entries: {r.bytes_per_1k_tokens:,.0f} B per 1k tokens, "
                f"get_many p99 {r.get_p99_ms_cold:.2f} ms fresh",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def write(rows: list[ScaleRow], info: dict[str, Any], out: Path) -> None:
    """``store_scale.json`` and ``store_scale.md`` (the table of docs/benchmarks.md)."""
    from semtoken_lab.bench.timing import machine_info

    (out / "store_scale.json").write_text(
        json.dumps(
            {"machine": machine_info(), "workload": info, "rows": [asdict(r) for r in rows]},
            indent=2,
        ),
        encoding="utf-8",
    )
    (out / "store_scale.md").write_text("\n".join(markdown(rows, info)) + "\n", encoding="utf-8")


def markdown(rows: list[ScaleRow], info: dict[str, Any]) -> list[str]:
    lines = [
        f"Workload: shapes of {info['chunks']} real chunks (mean {info['mean_words']:.0f} words, "
        f"{info['mean_tokens']:.0f} encoder tokens), vectors from {info['pool_vectors']} real "
        f"MiniLM fingerprints + noise.",
        "",
        "| entries | codec | B on disk / entry | B / 1k tok | insert entries/s | train s | "
        "open ms (quick_check / none) | get_many 10 p50 / p99 ms, fresh | warm p50 / p99 ms | "
        "peak RSS MiB insert / lookup |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.entries:,} | {r.codec} | {r.bytes_per_entry:,.0f} | "
            f"{r.bytes_per_1k_tokens:,.0f} | {r.insert_entries_per_s:.0f} | {r.train_s:.0f} | "
            f"{r.open_ms_verify:,.0f} / {r.open_ms_no_verify:.1f} | "
            f"{r.get_p50_ms_cold:.2f} / {r.get_p99_ms_cold:.2f} | "
            f"{r.get_p50_ms_warm:.2f} / {r.get_p99_ms_warm:.2f} | "
            f"{r.peak_rss_insert_mib:.0f} / {r.peak_rss_lookup_mib:.0f} |"
        )
    for r in rows:
        if r.eviction is not None:
            e = r.eviction
            lines += [
                "",
                f"Eviction ({e.inserted:,} entries into max_bytes = {e.max_bytes:,}, half their "
                f"payload): {e.entries_after:,} entries kept, payload {e.payload_after:,} B, "
                f"{e.bytes_on_disk:,} B on disk, {e.insert_entries_per_s:.0f} entries/s; oldest "
                f"tenth present {e.oldest_tenth_present:.2f}, newest tenth "
                f"{e.newest_tenth_present:.2f}.",
            ]
    return lines


if __name__ == "__main__":  # child processes of :func:`measure`
    kind, payload = sys.argv[1], json.loads(sys.argv[2])
    result = {"insert": child_insert, "lookup": child_lookup}[kind](payload)
    print(json.dumps(result))
