"""Benchmark: time to first token of the local reader, full vs compressed context (not a test).

For each context size (reader tokens of concatenated NarrativeQA summaries, one chunk per
summary, the question's own summary among them) the reader answers from the full context and from
the SemTokenRAG-compressed context at each ratio.  Compressed time counts compression too:

* ``cold``: a compressor with no fingerprint cache, so the encoder runs over the whole context at
  query time (the worst case);
* ``warm``: fingerprints precomputed at ingestion (``Compressor.precompute``), the design's normal
  path, so query time pays scoring + selection only.

speedup = full TTFT / (compression ms + compressed TTFT).  Medians over ``--repeats`` questions,
after a warm-up.  TTFT is the reader's own (prompt building + tokenisation + prefill + first token).

    python benchmarks/bench_reader_ttft.py --out bench_out/reader_ttft.json \
        [--sizes 1024 2048 4096 8000] [--ratios 0.5 0.25] [--repeats 2]

Goal: >= 1.8x at ratio 0.5.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from pathlib import Path

import torch

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.reader import LocalReader

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "narrativeqa" / "test.jsonl"


def load_docs() -> list[dict]:
    """One (context, question) per distinct NarrativeQA summary, in file order."""
    docs: list[dict] = []
    seen: set[str] = set()
    with DATA.open(encoding="utf-8") as fh:
        for line in fh:
            ex = json.loads(line)
            if ex["context"] not in seen:
                seen.add(ex["context"])
                docs.append(ex)
    return docs


def build_chunks(reader: LocalReader, docs: list[dict], start: int, n_tokens: int) -> list[str]:
    """Whole summaries from ``docs[start:]`` until ``n_tokens`` reader tokens; the last is cut."""
    chunks: list[str] = []
    total, i = 0, start
    while total < n_tokens:
        text = docs[i % len(docs)]["context"]
        ids = reader.tokenizer(text, add_special_tokens=False)["input_ids"]
        room = n_tokens - total
        if len(ids) > room:
            text = reader.tokenizer.decode(ids[:room])
        chunks.append(text)
        total += min(len(ids), room)
        i += 1
    return chunks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096, 8000])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.25])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--reader", default="smollm2")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--out", type=Path, default=Path("bench_out/reader_ttft.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    reader = LocalReader(args.reader, dtype=args.dtype)
    reader.warmup()
    docs = load_docs()
    cold = {
        r: Compressor(
            SemTokenConfig(compression_ratio=r, count_tokenizer=args.reader, cache_embeddings=False)
        )
        for r in args.ratios
    }
    warm = {
        r: Compressor(SemTokenConfig(compression_ratio=r, count_tokenizer=args.reader))
        for r in args.ratios
    }
    for comp in (*cold.values(), *warm.values()):  # load encoders / tokenizers outside timings
        comp.compress(docs[0]["context"], query=docs[0]["question"])

    rows: list[dict] = []
    for size in args.sizes:
        samples: dict[str, list[float]] = {}
        for rep in range(args.repeats):
            start = 7 * rep + size // 512  # a different question (and neighbours) per repeat
            q = docs[start % len(docs)]["question"]
            chunks = build_chunks(reader, docs, start, size)
            full = reader.answer(q, "\n\n".join(chunks), max_new_tokens=1)
            samples.setdefault("full_ttft", []).append(full.ttft_ms)
            samples.setdefault("full_prompt", []).append(full.prompt_tokens)
            samples.setdefault("full_kv", []).append(full.kv_bytes)
            for r in args.ratios:
                t = time.perf_counter()
                res = cold[r].compress(chunks, query=q)
                cold_ms = (time.perf_counter() - t) * 1e3
                warm[r].precompute(chunks)
                t = time.perf_counter()
                res_w = warm[r].compress(chunks, query=q)
                warm_ms = (time.perf_counter() - t) * 1e3
                ans = reader.answer(q, res_w.joined(), max_new_tokens=1)
                samples.setdefault(f"{r}_cold_ms", []).append(cold_ms)
                samples.setdefault(f"{r}_warm_ms", []).append(warm_ms)
                samples.setdefault(f"{r}_ttft", []).append(ans.ttft_ms)
                samples.setdefault(f"{r}_prompt", []).append(ans.prompt_tokens)
                samples.setdefault(f"{r}_kv", []).append(ans.kv_bytes)
                samples.setdefault(f"{r}_ratio", []).append(res.ratio)
        med = {k: statistics.median(v) for k, v in samples.items()}
        for r in args.ratios:
            row = {
                "context_tokens": size,
                "ratio": r,
                "achieved_ratio": med[f"{r}_ratio"],
                "full_prompt_tokens": med["full_prompt"],
                "compressed_prompt_tokens": med[f"{r}_prompt"],
                "full_ttft_ms": med["full_ttft"],
                "compress_cold_ms": med[f"{r}_cold_ms"],
                "compress_warm_ms": med[f"{r}_warm_ms"],
                "compressed_ttft_ms": med[f"{r}_ttft"],
                "full_kv_bytes": med["full_kv"],
                "compressed_kv_bytes": med[f"{r}_kv"],
            }
            row["speedup_cold"] = row["full_ttft_ms"] / (
                row["compress_cold_ms"] + row["compressed_ttft_ms"]
            )
            row["speedup_warm"] = row["full_ttft_ms"] / (
                row["compress_warm_ms"] + row["compressed_ttft_ms"]
            )
            rows.append(row)
            print(json.dumps(row), flush=True)

    lines = [
        "| context tokens | ratio | achieved | full TTFT ms | compress ms cold / warm | "
        "compressed TTFT ms | speedup cold | speedup warm | KV full -> compressed (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        kv = f"{r['full_kv_bytes'] / 2**20:.1f} -> {r['compressed_kv_bytes'] / 2**20:.1f}"
        lines.append(
            f"| {r['context_tokens']} | {r['ratio']} | {r['achieved_ratio']:.2f} | "
            f"{r['full_ttft_ms']:.0f} | "
            f"{r['compress_cold_ms']:.0f} / {r['compress_warm_ms']:.0f} | "
            f"{r['compressed_ttft_ms']:.0f} | "
            f"{r['speedup_cold']:.2f}x | {r['speedup_warm']:.2f}x | {kv} |"
        )
    table = "\n".join(lines)
    print(table)
    env = {
        "reader": args.reader,
        "device": reader.device,
        "dtype": str(reader.dtype),
        "attn": reader.attn_implementation,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "repeats": args.repeats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"env": env, "rows": rows, "table": table}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
