"""What ``compression_ratio="auto"`` costs (issue 26 target: at most +10% of warm compression).

Real questions over real contexts (NarrativeQA summaries, HotpotQA passages), cut into
120-word chunks; the engine's public API only.  Each context is compressed once to warm the
fingerprint cache, then ``compress(chunks, question, ratio=R)`` with the fixed ratio and with
``"auto"`` alternate ``--repeats`` times (same inputs, same warm engine), so both see the same
machine state.  Reported: medians per call, the overhead of ``auto`` (median of per-example
ratios), and the ratio it chose.

    python benchmarks/bench_auto_budget.py --out benchmarks/results/auto_budget
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETS = {
    "narrativeqa": "narrativeqa/test.jsonl",
    "hotpotqa": "hotpotqa_dev_sample/dev.jsonl",
}


def _chunks(text: str, words: int = 120, most: int = 16) -> list[str]:
    toks = text.split()
    return [" ".join(toks[i : i + words]) for i in range(0, len(toks), words)][:most]


def _time(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1e3, out


def _measure(comp: Any, chunks: list[str], question: str, ratio: float, repeats: int) -> dict:
    comp.compress(chunks, question, ratio=ratio)  # fingerprints into the cache
    fixed, auto = [], []
    for _ in range(repeats):
        fixed.append(_time(lambda: comp.compress(chunks, question, ratio=ratio))[0])
        ms, res = _time(lambda: comp.compress(chunks, question, ratio="auto"))
        auto.append(ms)
    kept = sum(c.kept_tokens for c in res.chunks)
    total = sum(c.original_tokens for c in res.chunks)
    return {
        "fixed_ms": statistics.median(fixed),
        "auto_ms": statistics.median(auto),
        "auto_ratio": kept / max(total, 1),
        "reason": res.budget_choice.reason,
        "tokens": total,
    }


def main(argv: list[str] | None = None) -> int:
    from semtoken_lab.bench.timing import machine_info
    from semtoken_lab.eval.data import load_examples

    from semtoken_rag import Compressor, SemTokenConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--examples", type=int, default=20, help="per set")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ratio", type=float, default=0.25, help="the fixed ratio compared")
    args = parser.parse_args(argv)
    comp = Compressor(SemTokenConfig())
    rows: dict[str, list[dict]] = {}
    for name, rel in SETS.items():
        exs = load_examples(args.data / rel, limit=args.examples, per_doc=1)
        rows[name] = [
            _measure(comp, _chunks(ex.context), ex.question, args.ratio, args.repeats) for ex in exs
        ]
    summary = {
        name: {
            "examples": len(rs),
            "fixed_ms_median": statistics.median(r["fixed_ms"] for r in rs),
            "auto_ms_median": statistics.median(r["auto_ms"] for r in rs),
            "overhead_median": statistics.median(r["auto_ms"] / r["fixed_ms"] - 1 for r in rs),
            "auto_ratio_mean": statistics.mean(r["auto_ratio"] for r in rs),
            "tokens_mean": statistics.mean(r["tokens"] for r in rs),
        }
        for name, rs in rows.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_info(), "args": {k: str(v) for k, v in vars(args).items()},
               "summary": summary, "rows": rows}  # fmt: skip
    (args.out / "auto_budget.json").write_text(json.dumps(payload, indent=2))
    lines = [
        f"Warm `compress` of up to 16 chunks of 120 words, fixed ratio {args.ratio} vs `auto` "
        f"(medians of {args.repeats} alternating calls per example; overhead = median over "
        "examples of auto / fixed - 1). Target: at most +10%.",
        "",
        "| set | examples | mean tokens | fixed ms | auto ms | overhead | auto mean ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['examples']} | {s['tokens_mean']:,.0f} | {s['fixed_ms_median']:.1f} "
            f"| {s['auto_ms_median']:.1f} | {s['overhead_median']:+.1%} "
            f"| {s['auto_ratio_mean']:.3f} |"
        )
    (args.out / "auto_budget.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
