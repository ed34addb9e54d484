"""Cross-chunk redundancy: what the near-duplicate skip saves on overlapping retrieved chunks.

Each NarrativeQA summary is cut into 120-word windows overlapping by 60 words (what a retriever
over an overlapping chunker returns), and compressed with the skip on (default
``dedup_threshold`` and ``lexical_dedup_threshold``) and off, at ratio 1.0 (no budget pressure:
the skip alone removes the repeated half of every window), 0.5 and 0.25.  Reported: tokens
kept, and how often the gold answer survives (over questions whose answer is in the summary).
Not a test.

    python benchmarks/bench_redundancy.py --n 100 --out bench_out/redundancy.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from semtoken_lab.eval.data import document_key, load_examples
from semtoken_lab.eval.metrics import answer_in_text

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.ingestion.chunking import chunk_words

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "narrativeqa" / "test.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="questions (spread over documents)")
    ap.add_argument("--out", default="bench_out/redundancy.json")
    args = ap.parse_args()
    examples = [
        ex for ex in load_examples([DATA], per_doc=2) if answer_in_text(ex.answers, ex.context)
    ][: args.n]
    requests = [(chunk_words(ex.context, 120, 60), ex.question) for ex in examples]
    base = Compressor(SemTokenConfig())
    off = Compressor(
        SemTokenConfig(dedup_threshold=None, lexical_dedup_threshold=None),
        encoder=base.encoder,
        store=base.store,
    )
    rows = []
    for ratio in (1.0, 0.5, 0.25):
        for name, comp in (("skip on", base), ("skip off", off)):
            res = comp.compress_many(requests, ratio=ratio)
            rows.append(
                {
                    "ratio": ratio,
                    "redundancy_skip": name,
                    "n": len(res),
                    "docs": len({document_key(e) for e in examples}),
                    "tokens_in": int(sum(r.original_tokens for r in res)),
                    "tokens_kept": int(sum(r.kept_tokens for r in res)),
                    "kept_fraction": float(np.mean([r.ratio for r in res])),
                    "dedup_saved_tokens": int(sum(r.dedup_saved_tokens for r in res)),
                    "gold_recall": float(
                        np.mean(
                            [answer_in_text(e.answers, r.joined()) for r, e in zip(res, examples)]
                        )
                    ),
                }
            )
    print("| ratio | skip | n | tokens in | tokens kept | kept fraction | gold recall |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['ratio']} | {r['redundancy_skip']} | {r['n']} | {r['tokens_in']} | "
            f"{r['tokens_kept']} | {r['kept_fraction']:.3f} | {r['gold_recall']:.3f} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
