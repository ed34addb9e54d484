"""The benchmark's targets, *measured* and never asserted.

:func:`targets` states each goal with the measured value and whether it was met, so a miss is
reported like a hit (a benchmark that fails on a slow machine would hide the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

from semtoken_lab.bench.compression_rows import BaselineRow, CompressionReport, CompressionRow
from semtoken_lab.bench.endtoend import EndToEndRow
from semtoken_lab.bench.result import BenchResult

#: Cost targets on every workload size: (name, goal, summary key, value format, upper bound).
_COST_TARGETS = (
    ("core", "<= 2 ms / 1k tokens", "core_ms_per_1k", "{:.2f}", 2.0),
    ("warm (repeated query)", "<= 5 ms / 1k tokens", "warm_repeat_query_ms_per_1k", "{:.2f}", 5.0),
    ("warm (fresh query)", "<= 5 ms / 1k tokens", "warm_fresh_query_ms_per_1k", "{:.2f}", 5.0),
    ("cold vs raw encoder", "cold / raw <= 1.10", "cold_over_raw", "{:.3f}", 1.10),
)

#: LongLLMLingua's cost over ours: (BaselineRow attribute, least factor, label).
_LINGUA_TARGETS = (
    ("over_cold", 20, "cold"),
    ("over_warm_repeat", 500, "warm, repeated query"),
    ("over_warm_fresh", 500, "warm, fresh query"),
)


@dataclass
class Target:
    """One stated goal and what was measured."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


def targets(res: BenchResult) -> list[Target]:
    """The issue's targets against this run's figures."""
    out: list[Target] = []
    if res.compression and res.compression.rows:
        out += _compression_targets(res.compression)
    out += gpu_targets(res)
    out += _endtoend_targets(res.endtoend)
    return out


def _compression_targets(comp: CompressionReport) -> list[Target]:
    """Cost per 1k tokens (worst size), scaling exponents, then LongLLMLingua's cost over ours."""
    summaries = [r.summary() for r in comp.rows]
    out = [
        Target(
            name,
            goal,
            _per_size(comp.rows, [s[key] for s in summaries], fmt),
            max(s[key] for s in summaries) <= bound,
        )
        for name, goal, key, fmt, bound in _COST_TARGETS
    ]
    for key in ("core", "cold"):
        k = comp.exponents.get(key)
        out.append(
            Target(
                f"scaling k ({key})",
                "<= 1.1 (t ~ n^k)",
                "n/a" if k is None else f"{k:.3f}",
                None if k is None else k <= 1.1,
            )
        )
    return out + _lingua_targets(comp.baselines)


def _per_size(rows: list[CompressionRow], values: list[float], fmt: str) -> str:
    """``"size: value"`` for every workload size, comma separated."""
    return ", ".join(
        f"{r.target_tokens}: {fmt.format(v)}" for r, v in zip(rows, values, strict=True)
    )


def _lingua_targets(baselines: list[BaselineRow]) -> list[Target]:
    """LongLLMLingua's time over ours (cold and warm), worst size; one skipped target without it."""
    lingua = [b for b in baselines if b.method == "longllmlingua"]
    if not lingua:
        return [Target("LongLLMLingua / ours", ">= 20x cold, >= 500x warm", "skipped", None)]
    out = []
    for attr, goal, label in _LINGUA_TARGETS:
        vals = [getattr(b, attr) for b in lingua]
        out.append(
            Target(
                f"LongLLMLingua / ours ({label})",
                f">= {goal}x cheaper",
                ", ".join(
                    f"{b.target_tokens}: {v:.0f}x" for b, v in zip(lingua, vals, strict=True)
                ),
                min(vals) >= goal,
            )
        )
    return out


def _endtoend_targets(rows: list[EndToEndRow]) -> list[Target]:
    """TTFT speed-up at ratio 0.5 from 2k tokens up (cold and warm); skipped without a reader."""
    e2e = [r for r in rows if r.ratio == 0.5 and r.context_tokens >= 2000]
    if not e2e:
        return [Target("e2e TTFT speed-up", ">= 1.8x at ratio 0.5", "skipped", None)]
    out = []
    for attr, label in (("ttft_speedup_cold", "cold"), ("ttft_speedup_warm", "warm")):
        vals = [getattr(r, attr) for r in e2e]
        out.append(
            Target(
                f"e2e TTFT speed-up at ratio 0.5, >= 2k tokens ({label})",
                ">= 1.8x, compression included",
                ", ".join(f"{r.context_tokens}: {v:.2f}x" for r, v in zip(e2e, vals, strict=True)),
                min(vals) >= 1.8,
            )
        )
    return out


def gpu_targets(res: BenchResult) -> list[Target]:
    """The GPU issue's targets (fingerprinting rate, warm ms per 1k at >= 4k, TTFT at 4k),
    stated only for a CUDA run."""
    if not str(res.device.get("device", "")).startswith("cuda"):
        return []
    out: list[Target] = []
    if res.encoder:
        best = max(res.encoder, key=lambda r: r.fingerprint_tokens_per_s)
        where = f"{best.dtype}, batch {best.batch_size}"
        out.append(
            Target(
                "GPU cold fingerprinting rate",
                ">= 1M tokens/s",
                f"{best.fingerprint_tokens_per_s / 1e6:.2f}M tokens/s ({where})",
                best.fingerprint_tokens_per_s >= 1e6,
            )
        )
        out.append(
            Target(
                "GPU fingerprinting vs raw forward",
                "time <= 1.10 x raw forward",
                f"{best.fingerprint_over_raw:.3f} ({where})",
                best.fingerprint_over_raw <= 1.10,
            )
        )
    rows = [r for r in (res.compression.rows if res.compression else []) if r.tokens >= 4000]
    for key, label in (
        ("warm_fresh_query_ms_per_1k", "fresh query"),
        ("warm_repeat_query_ms_per_1k", "repeated query"),
    ):
        if rows:
            vals = [r.summary()[key] for r in rows]
            out.append(
                Target(
                    f"GPU warm compression ({label}), >= 4k tokens",
                    "<= 0.5 ms / 1k tokens",
                    ", ".join(f"{r.tokens}: {v:.3f}" for r, v in zip(rows, vals, strict=True)),
                    max(vals) <= 0.5,
                )
            )
    at4k = [r for r in res.endtoend if r.ratio == 0.5 and r.context_tokens == 4000]
    for r in at4k:
        out.append(
            Target(
                "GPU e2e TTFT speed-up at 4k tokens, ratio 0.5 (cold / warm)",
                ">= 1.8x, compression included",
                f"{r.ttft_speedup_cold:.2f}x / {r.ttft_speedup_warm:.2f}x",
                r.ttft_speedup_cold >= 1.8,
            )
        )
    return out
