# Timed closures are defined and called inside one loop iteration: late binding is intended.
# ruff: noqa: B023
"""Benchmark of the core and the cold path, in ms per 1k tokens (not a test).

(a) core alone with fingerprints given (``plan_context`` + render) and its stage breakdown,
(b) the full cold path (a new ``Compressor`` with an empty cache: tokenise, encoder forward, core),
(c) the raw encoder forward alone over the same windows (``model(**batch)``, no pooling),
at 1k / 8k / 64k tokens of concatenated NarrativeQA summaries.  Medians after a warm-up.

    python benchmarks/bench_core.py --out bench_out [--sizes 1000 8000 64000] [--repeats 5]

Targets: core <= 2 ms per 1k tokens; cold within 10% of the raw encoder forward.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from semtoken_rag import Compressor, SemTokenConfig
from semtoken_rag.core.budget import select_units
from semtoken_rag.core.entropy import span_entropy
from semtoken_rag.core.pipeline import ContextArrays, plan_context
from semtoken_rag.core.pooling import l2_normalize, segment_lengths, segment_means
from semtoken_rag.core.redundancy import near_duplicate_pairs
from semtoken_rag.core.render import kept_word_ranges, render
from semtoken_rag.core.scoring import coarse_spans, combined_score, relevance, representatives
from semtoken_rag.core.spans import form_spans

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "narrativeqa" / "test.jsonl"


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def build_text(comp: Compressor, n_tokens: int) -> str:
    contexts = []
    with DATA.open(encoding="utf-8") as fh:
        for line in fh:
            ctx = json.loads(line)["context"]
            if ctx not in contexts:
                contexts.append(ctx)
    parts: list[str] = []
    total, i = 0, 0
    while total < n_tokens:
        c = contexts[i % len(contexts)]
        parts.append(c)
        total += comp.count_tokens(c)
        i += 1
    text = "\n\n".join(parts)
    # Trim to about n_tokens at a word boundary.
    words = text.split(" ")
    lo, hi = 1, len(words)
    while lo < hi:
        mid = (lo + hi) // 2
        if comp.count_tokens(" ".join(words[:mid])) < n_tokens:
            lo = mid + 1
        else:
            hi = mid
    return " ".join(words[:lo])


def stage_breakdown(
    ctx: ContextArrays,
    qvec: np.ndarray,
    budget: int,
    comp: Compressor,
    text: str,
    word_spans: np.ndarray,
    repeats: int,
) -> dict[str, float]:
    """Each core stage timed alone, with the pipeline's own inputs."""
    p = comp._params
    n_units = ctx.n_units
    unit_vecs = l2_normalize(segment_means(ctx.word_vectors, ctx.unit_starts))
    costs = np.add.reduceat(ctx.word_costs, ctx.unit_starts)
    breaks = np.zeros(n_units, dtype=bool)
    out: dict[str, float] = {}
    out["spans"] = median_ms(
        lambda: form_spans(unit_vecs, p.similarity_threshold, p.max_cluster_size, breaks), repeats
    )
    span_starts = form_spans(unit_vecs, p.similarity_threshold, p.max_cluster_size, breaks)
    sizes = segment_lengths(span_starts, n_units)
    span_of_unit = np.repeat(np.arange(len(span_starts)), sizes)
    sws = ctx.unit_starts[span_starts]
    out["entropy"] = median_ms(lambda: span_entropy(ctx.word_vectors, sws), repeats)
    ent = span_entropy(ctx.word_vectors, sws)

    def scoring() -> None:
        rel = relevance(qvec, unit_vecs)
        combined_score(rel, ent[span_of_unit], p.relevance_weight, p.entropy_weight)
        coarse = coarse_spans(ent, sizes, p.entropy_threshold, p.min_cluster_size)
        if coarse.any():
            representatives(unit_vecs, span_of_unit, segment_means(ctx.word_vectors, sws))

    out["scoring"] = median_ms(scoring, repeats)
    out["dedup"] = median_ms(lambda: near_duplicate_pairs(unit_vecs, p.dedup_threshold), repeats)
    dups = near_duplicate_pairs(unit_vecs, p.dedup_threshold)
    scores = combined_score(
        relevance(qvec, unit_vecs), ent[span_of_unit], p.relevance_weight, p.entropy_weight
    )
    ends = np.append(ctx.unit_starts[1:], len(ctx.word_costs))
    wc = np.empty(n_units, dtype=object)
    for i, (s, e) in enumerate(zip(ctx.unit_starts.tolist(), ends.tolist(), strict=False)):
        wc[i] = ctx.word_costs[s:e]
    out["selection"] = median_ms(
        lambda: select_units(
            scores,
            costs,
            budget,
            duplicates=dups,
            word_costs=wc,
            min_fill_tokens=p.min_fill_tokens,
            sep_cost=2,
        ),
        repeats,
    )
    sel = select_units(scores, costs, budget, duplicates=dups, word_costs=wc)

    def do_render() -> None:
        r = kept_word_ranges(
            sel.kept, ctx.unit_starts, len(word_spans), sel.partial_unit, sel.partial_words
        )
        render(text, word_spans, r, " … ")

    out["render"] = median_ms(do_render, repeats)
    return out


def run(sizes: list[int], repeats: int) -> list[dict]:
    import torch

    comp = Compressor(SemTokenConfig())
    enc = comp.encoder
    query = "Who does the main character meet at the end?"
    rows = []
    for n_tok in sizes:
        text = build_text(comp, n_tok)
        n_real = comp.count_tokens(text)
        k = n_real / 1000
        reps = repeats if n_tok <= 8000 else max(2, repeats // 2)
        # Fingerprints computed once; the core runs on them.
        fp = enc.encode_texts([text])[0]
        prep = comp._prepare(text, fp)
        qvec = enc.encode_queries([query])[0]
        ctx = ContextArrays(
            fp.vectors,
            prep.word_costs,
            prep.unit_starts,
            np.zeros(len(prep.unit_starts), np.int64),
            prep.forced,
        )
        budget = n_real // 2
        budgets = np.asarray([budget], np.int64)

        def core() -> None:
            plan = plan_context(ctx, qvec, budgets, comp._params)
            kept_word_ranges(plan.kept, ctx.unit_starts, fp.n_words)
            pu = int(np.flatnonzero(plan.partial)[0]) if plan.partial.any() else -1
            r = kept_word_ranges(
                plan.kept, ctx.unit_starts, fp.n_words, pu, int(plan.partial[pu]) if pu >= 0 else 0
            )
            render(text, fp.word_spans, r, " … ")

        core_ms = median_ms(core, reps * 2)
        stages = stage_breakdown(ctx, qvec, budget, comp, text, fp.word_spans, reps * 2)
        warm_ms = median_ms(lambda: comp.compress(text, query, ratio=0.5), reps)

        def cold() -> None:
            fresh = Compressor(SemTokenConfig(), encoder=enc, counter=comp.counter)
            enc_cache = getattr(comp.counter, "_cache", None)
            if enc_cache is not None:
                enc_cache.clear()  # tokenising is part of the cold path
            fresh.compress(text, query, ratio=0.5)

        cold_ms = median_ms(cold, reps)

        # Raw forward over the same windows the encoder builds.
        ids = enc.tokenizer(text, add_special_tokens=False)["input_ids"]
        from semtoken_rag.encoder import window_plan

        content = enc.window_tokens - 2
        rows_ids = [
            [enc.tokenizer.cls_token_id, *ids[s : s + content], enc.tokenizer.sep_token_id]
            for s, _, _ in window_plan(len(ids), content, enc.overlap)
        ]
        batches = []
        for lo in range(0, len(rows_ids), enc.batch_size):
            chunk = rows_ids[lo : lo + enc.batch_size]
            width = max(len(r) for r in chunk)
            ids_t = torch.zeros((len(chunk), width), dtype=torch.long)
            mask_t = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, r in enumerate(chunk):
                ids_t[i, : len(r)] = torch.tensor(r)
                mask_t[i, : len(r)] = 1
            batches.append({"input_ids": ids_t, "attention_mask": mask_t})

        def raw() -> None:
            with torch.inference_mode():
                for b in batches:
                    enc.model(**b)

        raw_ms = median_ms(raw, reps)
        rows.append(
            {
                "target_tokens": n_tok,
                "tokens": n_real,
                "words": fp.n_words,
                "units": int(ctx.n_units),
                "windows": len(rows_ids),
                "core_ms": core_ms,
                "core_ms_per_1k": core_ms / k,
                "stages_ms_per_1k": {s: v / k for s, v in stages.items()},
                "warm_compress_ms_per_1k": warm_ms / k,
                "cold_ms_per_1k": cold_ms / k,
                "raw_forward_ms_per_1k": raw_ms / k,
                "cold_over_raw": cold_ms / raw_ms,
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    stages = list(rows[0]["stages_ms_per_1k"]) if rows else []
    head = ["tokens", "units", "core", *stages, "warm", "cold", "raw fwd", "cold/raw"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["tokens"]), str(r["units"]), f"{r['core_ms_per_1k']:.2f}"]
        cells += [f"{r['stages_ms_per_1k'][s]:.3f}" for s in stages]
        cells += [
            f"{r['warm_compress_ms_per_1k']:.1f}",
            f"{r['cold_ms_per_1k']:.1f}",
            f"{r['raw_forward_ms_per_1k']:.1f}",
            f"{r['cold_over_raw']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n(all times ms per 1k tokens, medians; cold/raw is a ratio)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench_out"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 8000, 64000])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import torch

    rows = run(args.sizes, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    (args.out / "bench_core.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(table(rows))
    print(f"\nwrote {args.out / 'bench_core.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
