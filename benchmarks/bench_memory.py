"""Resident memory of a long-running process: 2,000 compress calls with the default settings.

Why: the engine keeps fingerprints of the chunks it encoded in memory (``cache_bytes``, default
256 MiB) so that a chunk is encoded once per process; the issue was 394 MB of growth over 2,000
calls with no setting for it.  This measures RSS growth against the cache's own byte count and
the configured bound, with the default and with a small cache, on distinct real chunks (each
call compresses 5 chunks never seen before, the worst case for the cache).

Run: ``python benchmarks/bench_memory.py --calls 2000 --out benchmarks/results/memory``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any


def rss_mib() -> float:
    """Current resident set size (Linux ``/proc/self/statm``), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def chunk_pool(data: Path, n: int) -> list[str]:
    """``n`` distinct 120-word chunks of the essays and NarrativeQA summaries."""
    from semtoken_rag.ingestion.chunking import chunk_words

    texts: list[str] = []
    for name, field in (
        ("needle_haystack/essays.jsonl", "text"),
        ("narrativeqa/test.jsonl", "context"),
    ):
        for line in (data / name).read_text(encoding="utf-8").splitlines():
            texts.append(json.loads(line)[field])
    pool = list(dict.fromkeys(c for t in dict.fromkeys(texts) for c in chunk_words(t, 120, 0)))
    if len(pool) < n:
        pool = [f"{c} [{i}]" for i in range(n // len(pool) + 1) for c in pool]
    return pool[:n]


def run(cache_bytes: int | None, calls: int, data: Path) -> dict[str, Any]:
    """RSS before and after ``calls`` compressions of 5 new chunks each."""
    from semtoken_rag import Compressor, SemTokenConfig

    options = {} if cache_bytes is None else {"cache_bytes": cache_bytes}
    comp = Compressor(SemTokenConfig(**options))
    pool = chunk_pool(data, calls * 5)
    comp.compress(pool[:5], "warm up")  # model and tokenizer loaded
    start, t0, trace = rss_mib(), time.perf_counter(), []
    for i in range(calls):
        comp.compress(pool[i * 5 : i * 5 + 5], "What is the main argument?")
        if (i + 1) % max(1, calls // 10) == 0:
            trace.append((i + 1, round(rss_mib() - start, 1), round(comp.store.nbytes / 2**20, 1)))
    bound = comp.config.encoder.cache_bytes
    return {
        "cache_bytes": bound,
        "calls": calls,
        "rss_growth_mib": round(rss_mib() - start, 1),
        "cache_mib": round(comp.store.nbytes / 2**20, 1),
        "bound_mib": round(bound / 2**20, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "trace": trace,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory"))
    args = parser.parse_args()
    rows = [run(None, args.calls, args.data), run(32 * 2**20, args.calls, args.data)]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    lines = [
        "| cache_bytes | calls | RSS growth MiB | cache holds MiB | bound MiB | s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = (r["calls"], r["rss_growth_mib"], r["cache_mib"], r["bound_mib"], r["seconds"])
        lines.append(f"| {r['bound_mib']:.0f} MiB | " + " | ".join(map(str, cells)) + " |")
    (args.out / "memory.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
