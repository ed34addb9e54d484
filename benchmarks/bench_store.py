"""Benchmark of the FingerprintStore with real MiniLM fingerprints of NarrativeQA contexts.

Measures insert and lookup throughput (persistent and in-memory), on-disk bytes per 1k tokens,
and cold vs warm compression time of the real ``Compressor`` over 50 contexts (the encoder is
loaded once beforehand, so both timings exclude model loading).  Prints a markdown table and
writes JSON.

    python benchmarks/bench_store.py --out bench_store.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "narrativeqa" / "test.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--contexts", type=int, default=50)
    ap.add_argument("--chunk-size", type=int, default=120)
    ap.add_argument("--chunk-overlap", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64, help="keys per get_many/put_many call")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (1 avoids spin-wait stalls on busy small CPUs)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.torch_threads)

    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.fingerprints import fingerprint_key
    from semtoken_rag.store import FingerprintStore, chunk_words

    # NarrativeQA has several questions per summary: take the first N *distinct* contexts.
    by_context: dict[str, dict] = {}
    for line in args.data.open(encoding="utf-8"):
        if line.strip():
            row = json.loads(line)
            by_context.setdefault(row["context"], row)
    rows = list(by_context.values())[: args.contexts]
    contexts = [
        (chunk_words(r["context"], args.chunk_size, args.chunk_overlap), r["question"])
        for r in rows
    ]
    texts = list(dict.fromkeys(c for chunks, _ in contexts for c in chunks))

    base = Compressor(SemTokenConfig())
    enc = base.encoder
    t = time.perf_counter()
    fps = enc.encode_texts(texts)
    encode_s = time.perf_counter() - t
    tokens = sum(base.count_tokens(x) for x in texts)
    items = [(fingerprint_key(x, enc.cache_id), fp) for x, fp in zip(texts, fps, strict=True)]
    keys = [k for k, _ in items]
    n_vec = sum(fp.n_words for fp in fps)
    res: dict[str, float | int | str] = {
        "contexts": len(rows),
        "chunks": len(texts),
        "tokens": tokens,
        "word_vectors": n_vec,
        "encode_all_s": encode_s,
        "machine": platform.processor() or platform.machine(),
        "torch_threads": args.torch_threads,
    }

    def throughput(store: FingerprintStore, tag: str) -> None:
        t0 = time.perf_counter()
        for lo in range(0, len(items), args.batch):
            store.put_many(items[lo : lo + args.batch])
        t1 = time.perf_counter()
        for lo in range(0, len(keys), args.batch):
            assert all(g is not None for g in store.get_many(keys[lo : lo + args.batch]))
        t2 = time.perf_counter()
        res[f"{tag}_insert_chunks_per_s"] = len(items) / (t1 - t0)
        res[f"{tag}_lookup_chunks_per_s"] = len(keys) / (t2 - t1)
        res[f"{tag}_lookup_tokens_per_s"] = tokens / (t2 - t1)

    with tempfile.TemporaryDirectory() as tmp:
        with FingerprintStore(Path(tmp) / "s") as s:
            throughput(s, "disk")
            payload = s.stats().payload_bytes
        db_only = sum(p.stat().st_size for p in (Path(tmp) / "s").glob("fingerprints*"))
        with FingerprintStore(Path(tmp) / "s") as s:
            t0 = time.perf_counter()
            s.search(fps[0].vectors[:1], k=5)
            res["search_index_build_s"] = time.perf_counter() - t0
        with FingerprintStore(Path(tmp) / "s") as s:
            res["bytes_on_disk_with_index"] = s.stats().bytes_on_disk
        res["bytes_on_disk_db"] = db_only
        res["payload_bytes"] = payload
        res["db_bytes_per_1k_tokens"] = db_only / tokens * 1000
        res["disk_bytes_per_1k_tokens_with_index"] = res["bytes_on_disk_with_index"] / tokens * 1e3
    with FingerprintStore(None) as s:
        throughput(s, "memory")

    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        for phase in ("cold", "warm"):
            with FingerprintStore(tmp) as store:
                comp = Compressor(SemTokenConfig(), encoder=enc, store=store, counter=base.counter)
                before = enc.calls
                t0 = time.perf_counter()
                for chunks, q in contexts:
                    comp.compress(chunks, q)
                timings[phase] = time.perf_counter() - t0
                res[f"{phase}_encoder_calls"] = enc.calls - before
        res["cold_compress_s"], res["warm_compress_s"] = timings["cold"], timings["warm"]
        res["warm_speedup"] = timings["cold"] / timings["warm"]

    table = [
        ("chunks / tokens / word vectors", f"{len(texts)} / {tokens} / {n_vec}"),
        ("insert, persistent (chunks/s)", f"{res['disk_insert_chunks_per_s']:.0f}"),
        ("lookup, persistent (chunks/s)", f"{res['disk_lookup_chunks_per_s']:.0f}"),
        ("lookup, persistent (tokens/s)", f"{res['disk_lookup_tokens_per_s']:.0f}"),
        ("insert, in-memory (chunks/s)", f"{res['memory_insert_chunks_per_s']:.0f}"),
        ("lookup, in-memory (chunks/s)", f"{res['memory_lookup_chunks_per_s']:.0f}"),
        ("SQLite bytes per 1k tokens", f"{res['db_bytes_per_1k_tokens']:.0f}"),
        (
            "on-disk bytes per 1k tokens (+ FAISS index)",
            f"{res['disk_bytes_per_1k_tokens_with_index']:.0f}",
        ),
        ("search index build (s)", f"{res['search_index_build_s']:.3f}"),
        (f"cold compress, {len(rows)} contexts (s)", f"{res['cold_compress_s']:.2f}"),
        (f"warm compress, {len(rows)} contexts (s)", f"{res['warm_compress_s']:.2f}"),
        ("warm speed-up (x)", f"{res['warm_speedup']:.1f}"),
        ("encoder calls cold / warm", f"{res['cold_encoder_calls']} / {res['warm_encoder_calls']}"),
    ]
    print("| measure | value |\n|---|---|")
    for k, v in table:
        print(f"| {k} | {v} |")
    if args.out:
        args.out.write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
