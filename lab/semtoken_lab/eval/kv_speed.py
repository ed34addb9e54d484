"""Decode speed under a KV budget, measured in lockstep so a shared machine's load cancels out.

Why lockstep: on a CPU shared with other jobs the per-step time of one run can change by 3x from
one minute to the next, so timing methods one after the other measures the neighbours.  Here one
prompt is prefilled once, every method gets its own session on a copy of the cache, and the
sessions advance together: at each step every method decodes the same gold token, in a fresh
random order, each timed on its own.  A load change then hits every method within ~a second.
Each method's time includes its policy (query scoring, eviction copies) and its start (the
first eviction after prefill), spread over the steps.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from semtoken_lab.eval.data import load_examples
from semtoken_lab.eval.stats import mean_se


@dataclass(frozen=True)
class SpeedConfig:
    """One decode-speed run.

    Attributes:
        data: JSONL files or folders.
        out: Output folder (``speed.json``, ``speed.md``).
        limit: Examples per file.
        max_prompt_tokens: Contexts are cut so the prompt (plus the fed tokens) has this many.
        steps: Decoding steps per example (the gold answer's tokens fed one at a time, then
            the context's when the answer is shorter).
        budgets: KV budgets (fractions of the prompt).
        policies: Policies at every budget (``full``, the unbounded cache, is always run).
        seed: Seed of the step orders.
    """

    data: tuple[str, ...]
    out: str
    limit: int | None = 5
    max_prompt_tokens: int = 4096
    steps: int = 64
    budgets: tuple[float, ...] = (0.5,)
    policies: tuple[str, ...] = ("semtoken", "streaming", "snapkv")
    seed: int = 0


def _example_times(kv: Any, ex: Any, cfg: SpeedConfig, rng: random.Random) -> dict[str, Any]:
    from semtoken_lab.reader.kv_budget import KVBudget

    tok = kv.reader.tokenizer
    gold = ex.answers[0] if ex.answers else ""
    text = f"{gold} {ex.context}"  # the gold answer, continued by text when it is short
    ids = [int(i) for i in tok(text, add_special_tokens=False)["input_ids"]][: cfg.steps]
    lay = kv.layout(
        ex.question,
        ex.context,
        task=ex.task_family,
        reserve=cfg.steps + 1,
        limit=cfg.max_prompt_tokens,
    )
    runs = {"full": KVBudget(1.0, "none")}
    runs.update({f"kv-{p}@{b:g}": KVBudget(b, p) for b in cfg.budgets for p in cfg.policies})
    rows = max(c.make_policy().prefill_rows for c in runs.values())
    with kv.attached(*cfg.policies):
        pre = kv.prefill(lay, rows=rows)
        sessions, start_s = {}, {}
        for name, budget in runs.items():
            t0 = time.perf_counter()
            sessions[name] = kv.session(pre, budget)
            start_s[name] = time.perf_counter() - t0
        steps: dict[str, list[float]] = {name: [] for name in runs}
        for token in ids:
            order = list(runs)
            rng.shuffle(order)
            for name in order:
                t0 = time.perf_counter()
                sessions[name].step(token)
                steps[name].append(time.perf_counter() - t0)
    return {
        "id": ex.id,
        "prompt_tokens": lay.prompt_tokens,
        "start_s": start_s,
        "step_s": steps,
        "kv_mean_bytes": {n: s.trace().mean_kv_bytes for n, s in sessions.items()},
    }


def summarize_speed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: ms per token (start included), median step ms, paired ratio to ``full``."""
    out = []
    for name in records[0]["step_s"]:
        per_tok = [
            1e3 * (r["start_s"][name] + sum(r["step_s"][name])) / len(r["step_s"][name])
            for r in records
        ]
        full = [
            1e3 * (r["start_s"]["full"] + sum(r["step_s"]["full"])) / len(r["step_s"]["full"])
            for r in records
        ]
        ratio = mean_se([m / f for m, f in zip(per_tok, full, strict=True)])
        step_ratio = [
            statistics.median(a / b for a, b in zip(r["step_s"][name], r["step_s"]["full"]))
            for r in records
        ]
        out.append(
            {
                "method": name,
                "n": len(records),
                "prompt_tokens": statistics.mean(r["prompt_tokens"] for r in records),
                "ms_per_token": statistics.mean(per_tok),
                "tokens_per_s": 1e3 / statistics.mean(per_tok),
                "median_step_ms": statistics.median(
                    1e3 * s for r in records for s in r["step_s"][name]
                ),
                "ratio_to_full": ratio.value,
                "ratio_to_full_se": ratio.se,
                "median_step_ratio": statistics.median(step_ratio),
                "start_ms": statistics.mean(1e3 * r["start_s"][name] for r in records),
                "kv_ratio": statistics.mean(
                    r["kv_mean_bytes"][name] / r["kv_mean_bytes"]["full"] for r in records
                ),
            }
        )
    return out


def render_speed(rows: list[dict[str, Any]], cfg: SpeedConfig) -> str:
    lines = [
        "# Decode speed under a KV budget (lockstep)",
        "",
        f"Config: `{json.dumps(asdict(cfg), sort_keys=True)}`",
        "",
        "ms/token: mean over the steps, each method's start (first eviction) included; ratio: "
        "paired per example, ± SE; median step ratio: median over steps of the step time over "
        "`full`'s step time (same step, same token), median over examples.",
        "",
        "| method | n | prompt tok | ms/token | tokens/s | ratio to full | median step ratio | "
        "start ms | KV mean/full |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['n']} | {r['prompt_tokens']:.0f} | {r['ms_per_token']:.1f} | "
            f"{r['tokens_per_s']:.2f} | {r['ratio_to_full']:.3f} ± {r['ratio_to_full_se']:.3f} | "
            f"{r['median_step_ratio']:.3f} | {r['start_ms']:.0f} | {r['kv_ratio']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def run_kv_speed(cfg: SpeedConfig, kv: Any = None) -> Path:
    """Measure; writes ``speed.json`` (records and summary) and ``speed.md`` into ``cfg.out``.

    Args:
        kv: A :class:`~semtoken_lab.reader.kv_generation.BudgetedGeneration` (built with the
            default reader and compressor spans if omitted).
    """
    if kv is None:
        from semtoken_rag import Compressor, SemTokenConfig

        from semtoken_lab.reader import LocalReader
        from semtoken_lab.reader.kv_generation import BudgetedGeneration
        from semtoken_lab.reader.kv_layout import CompressorSpans

        reader = LocalReader()
        comp = Compressor(SemTokenConfig(count_tokenizer=reader.model_name))
        kv = BudgetedGeneration(reader, spans=CompressorSpans(comp))
    rng = random.Random(cfg.seed)
    records = [_example_times(kv, ex, cfg, rng) for ex in load_examples(cfg.data, limit=cfg.limit)]
    rows = summarize_speed(records)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": asdict(cfg), "summary": rows, "records": records}
    (out / "speed.json").write_text(json.dumps(payload, indent=1), encoding="utf-8")
    (out / "speed.md").write_text(render_speed(rows, cfg), encoding="utf-8")
    return out
