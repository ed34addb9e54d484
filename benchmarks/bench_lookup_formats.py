"""Warm lookup of 10 chunks: this store (format 3) against format 2, same machine, same run.

Why side by side: issue 23 bounds a located lookup at 1.2x "the exact-key hit of today", i.e. of
format 2's ``get_many``.  Absolute milliseconds move with the machine's load by several times
(6.0 ms p99 on a quiet machine, 44 ms on a loaded one), so only a ratio measured in the same
minutes means anything.  Format 2 is not in this tree: pass a checkout of it
(``git worktree add /tmp/format2 5ab1950``); each format runs in its own interpreter.

Workload: 1,000 chunks of 256 words from NarrativeQA summaries, random unit vectors (the decode
cost does not depend on the values), codec ``pq64``; 300 queries of 10 random chunks, 20 warm-up
queries, two passes (the second is reported).  *exact*: the chunks' own texts; *sliced*: the same
chunks minus their first and last 10-30 words (found by shingles, every word verified).

Run: ``python benchmarks/bench_lookup_formats.py --format2 /tmp/format2 --out
benchmarks/results/lookup_formats``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUERIES, WARMUP, PER_QUERY, CHUNKS, WORDS = 300, 20, 10, 1000, 256


def chunks(data: Path) -> list[str]:
    """``CHUNKS`` distinct windows of ``WORDS`` whitespace words of NarrativeQA contexts."""
    out: list[str] = []
    for line in (data / "narrativeqa" / "test.jsonl").read_text(encoding="utf-8").splitlines():
        words = json.loads(line)["context"].split()
        for lo in range(0, len(words) - WORDS + 1, WORDS):
            text = " ".join(words[lo : lo + WORDS])
            if text not in out:
                out.append(text)
            if len(out) == CHUNKS:
                return out
    return out


def timed(queries: list[list], call: object) -> dict[str, float]:
    """p50 / p99 ms of ``call(query)`` over the queries (after a warm-up and a first pass)."""
    for q in queries[:WARMUP]:
        call(q)  # type: ignore[operator]
    ms: list[float] = []
    for _ in range(2):
        ms = []
        for q in queries:
            t0 = time.perf_counter()
            got = call(q)  # type: ignore[operator]
            ms.append((time.perf_counter() - t0) * 1e3)
            if any(g is None for g in got):
                raise RuntimeError("a chunk was not served")
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def run_format2(texts: list[str]) -> dict[str, dict[str, float]]:
    """Format 2 (``put_many`` / ``get_many`` by exact key); runs inside the old checkout."""
    from semtoken_rag.core.segment import find_words
    from semtoken_rag.fingerprints import ChunkFingerprints, fingerprint_key
    from semtoken_rag.store import FingerprintStore, get_codec

    rng = np.random.default_rng(0)
    codec = get_codec("pq64").with_options(train_min=4096)
    store = FingerprintStore(tempfile.mkdtemp(), codec=codec)
    items = []
    for t in texts:
        spans = find_words(t)
        v = rng.standard_normal((len(spans), 384)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        items.append((fingerprint_key(t, "bench"), ChunkFingerprints(v, spans)))
    for lo in range(0, len(items), 100):
        store.put_many(items[lo : lo + 100], encoder_id="bench")
    keys = [k for k, _ in items]
    queries = [[keys[i] for i in rng.integers(0, len(keys), PER_QUERY)] for _ in range(QUERIES)]
    return {"exact": timed(queries, store.get_many)}


def run_format3(texts: list[str]) -> dict[str, dict[str, float]]:
    """This tree's store: whole chunks ingested as documents, then ``lookup``."""
    from semtoken_rag.core.segment import find_words
    from semtoken_rag.ingestion import IngestOptions, LocalRunner, ingest
    from semtoken_rag.store import FingerprintStore, get_codec
    from tests.fakes import FakeEncoder

    rng = np.random.default_rng(0)
    enc = FakeEncoder(dim=384)
    codec = get_codec("pq64").with_options(train_min=4096)
    store = FingerprintStore(tempfile.mkdtemp(), codec=codec)
    ingest(texts, store, LocalRunner(enc), IngestOptions(progress=False))

    def sliced(t: str) -> str:
        spans = find_words(t)
        a, b = int(rng.integers(10, 30)), len(spans) - int(rng.integers(10, 30))
        return t[spans[a][0] : spans[b - 1][1]]

    out = {}
    for kind, pick in (("exact", lambda t: t), ("sliced", sliced)):
        queries = [[pick(texts[i]) for i in rng.integers(0, len(texts), PER_QUERY)]
                   for _ in range(QUERIES)]  # fmt: skip
        out[kind] = timed(queries, lambda q: store.lookup(q, enc.cache_id))
    return out


def child(fmt: str, data: Path) -> None:
    """Entry point of one format's interpreter: prints its JSON result."""
    texts = chunks(data)
    print(json.dumps(run_format2(texts) if fmt == "2" else run_format3(texts)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format2", type=Path, help="checkout of format 2 (e.g. commit 5ab1950)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--child", choices=("2", "3"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    result: dict[str, object] = {}
    for fmt, path in (("2", args.format2), ("3", ROOT)):
        if path is None:
            continue
        cmd = [sys.executable, __file__, "--child", fmt, "--out", str(args.out),
               "--data", str(args.data)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": f"{path}:{ROOT}"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        result[f"format{fmt}"] = json.loads(proc.stdout.strip().splitlines()[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lookup_formats.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    rows = ["| store | chunks | p50 ms | p99 ms |", "|---|---|---:|---:|"]
    for name, kinds in result.items():
        for kind, t in kinds.items():  # type: ignore[attr-defined]
            rows.append(f"| {name} | {kind} | {t['p50_ms']:.2f} | {t['p99_ms']:.2f} |")
    (args.out / "lookup_formats.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
