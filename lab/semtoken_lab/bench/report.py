"""Benchmark results as JSON, a markdown report and a PNG plot (matplotlib, Agg backend).

Targets are *measured*, never asserted: :func:`targets` states each one with the measured value
and whether it was met, so a miss is reported like a hit.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semtoken_lab.bench.compression import CompressionReport
from semtoken_lab.bench.encoder import EncoderRow
from semtoken_lab.bench.endtoend import EndToEndRow
from semtoken_lab.bench.store import StoreReport

JSON_NAME = "bench.json"
MD_NAME = "bench.md"
PNG_NAME = "bench.png"


@dataclass
class Target:
    """One stated goal and what was measured."""

    name: str
    goal: str
    measured: str
    met: bool | None  # None: not measured in this run


@dataclass
class BenchResult:
    """Everything one ``semtoken-rag bench`` run measured."""

    command: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    compression: CompressionReport | None = None
    store: StoreReport | None = None
    endtoend: list[EndToEndRow] = field(default_factory=list)
    reader: dict[str, Any] = field(default_factory=dict)
    encoder: list[EncoderRow] = field(default_factory=list)
    #: The benchmark device (:func:`semtoken_lab.bench.device.device_info`) and the weights.
    device: dict[str, Any] = field(default_factory=dict)


def _with_props(obj: Any) -> dict[str, Any]:
    """``asdict`` plus the derived properties / summary, so the JSON is self-explanatory."""
    d = dataclasses.asdict(obj)
    if hasattr(obj, "summary"):
        d.update(obj.summary())
    for name in dir(type(obj)):
        if isinstance(getattr(type(obj), name, None), property):
            d[name] = getattr(obj, name)
    return d


def targets(res: BenchResult) -> list[Target]:
    """The issue's targets against this run's figures."""
    out: list[Target] = []
    comp = res.compression
    if comp and comp.rows:
        rows = comp.rows
        s = [r.summary() for r in rows]

        def worst(key: str) -> float:
            return max(x[key] for x in s)

        def each(key: str, fmt: str = "{:.2f}") -> str:
            return ", ".join(
                f"{r.target_tokens}: {fmt.format(x[key])}" for r, x in zip(rows, s, strict=True)
            )

        out.append(
            Target(
                "core", "<= 2 ms / 1k tokens", each("core_ms_per_1k"), worst("core_ms_per_1k") <= 2
            )
        )
        for key, label in (
            ("warm_repeat_query_ms_per_1k", "warm (repeated query)"),
            ("warm_fresh_query_ms_per_1k", "warm (fresh query)"),
        ):
            out.append(Target(label, "<= 5 ms / 1k tokens", each(key), worst(key) <= 5))
        out.append(
            Target(
                "cold vs raw encoder",
                "cold / raw <= 1.10",
                each("cold_over_raw", "{:.3f}"),
                worst("cold_over_raw") <= 1.10,
            )
        )
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
        lingua = [b for b in comp.baselines if b.method == "longllmlingua"]
        if lingua:
            for attr, goal, label in (
                ("over_cold", 20, "cold"),
                ("over_warm_repeat", 500, "warm, repeated query"),
                ("over_warm_fresh", 500, "warm, fresh query"),
            ):
                vals = [getattr(b, attr) for b in lingua]
                out.append(
                    Target(
                        f"LongLLMLingua / ours ({label})",
                        f">= {goal}x cheaper",
                        ", ".join(
                            f"{b.target_tokens}: {v:.0f}x"
                            for b, v in zip(lingua, vals, strict=True)
                        ),
                        min(vals) >= goal,
                    )
                )
        else:
            out.append(Target("LongLLMLingua / ours", ">= 20x cold, >= 500x warm", "skipped", None))
    out += gpu_targets(res)
    e2e = [r for r in res.endtoend if r.ratio == 0.5 and r.context_tokens >= 2000]
    if e2e:
        for attr, label in (("ttft_speedup_cold", "cold"), ("ttft_speedup_warm", "warm")):
            vals = [getattr(r, attr) for r in e2e]
            out.append(
                Target(
                    f"e2e TTFT speed-up at ratio 0.5, >= 2k tokens ({label})",
                    ">= 1.8x, compression included",
                    ", ".join(
                        f"{r.context_tokens}: {v:.2f}x" for r, v in zip(e2e, vals, strict=True)
                    ),
                    min(vals) >= 1.8,
                )
            )
    else:
        out.append(Target("e2e TTFT speed-up", ">= 1.8x at ratio 0.5", "skipped", None))
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


def to_json(res: BenchResult) -> dict[str, Any]:
    comp = res.compression
    return {
        "command": res.command,
        "machine": res.machine,
        "device": res.device,
        "encoder": [_with_props(r) for r in res.encoder],
        "settings": res.settings,
        "compression": None
        if comp is None
        else {
            "rows": [_with_props(r) for r in comp.rows],
            "exponents": comp.exponents,
            "baselines": [_with_props(b) for b in comp.baselines],
        },
        "store": None if res.store is None else dataclasses.asdict(res.store),
        "endtoend": {"reader": res.reader, "rows": [_with_props(r) for r in res.endtoend]},
        "targets": [dataclasses.asdict(t) for t in targets(res)],
    }


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _device_lines(res: BenchResult) -> list[str]:
    d = res.device
    if not d:
        return []
    where = str(d.get("device"))
    if d.get("gpu"):
        where += (
            f" ({d['gpu']}, compute {d.get('capability')}, "
            f"{int(d.get('memory_bytes', 0)) / 2**30:.0f} GiB, driver {d.get('driver')}, "
            f"CUDA {d.get('cuda_runtime')}, cuDNN {d.get('cudnn')})"
        )
    lines = [
        f"Device: {where}; torch {d.get('torch')}, transformers {d.get('transformers')}.",
        "",
    ]
    weights = d.get("weights") or {}
    random = [name for name, w in weights.items() if w != "real"]
    if random:
        lines += [
            f"**Random weights** ({', '.join(random)}): the real architectures built from their "
            "configs with seeded random weights (the real weights cannot reach this machine); "
            "timings do not depend on the weights' values, answers and ratios do.",
            "",
        ]
    return lines


def _encoder_lines(rows: list[EncoderRow]) -> list[str]:
    lines = [
        "## Encoder: fingerprinting vs raw forward (tokens/s, medians)",
        "",
        f"Workload: {rows[0].tokens} encoder tokens, {rows[0].windows} windows at batch "
        f"{rows[0].batch_size}.  fp / raw: fingerprinting time over raw forward time.",
        "",
    ]
    lines += _table(
        ["dtype", "batch", "fingerprints tok/s", "raw fwd tok/s", "fp / raw", "GPU peak MiB"],
        [
            [
                r.dtype,
                str(r.batch_size),
                f"{r.fingerprint_tokens_per_s:,.0f}",
                f"{r.raw_tokens_per_s:,.0f}",
                f"{r.fingerprint_over_raw:.3f}",
                f"{r.gpu_peak_bytes / 2**20:.0f}",
            ]
            for r in rows
        ],
    )
    return [*lines, ""]


def to_markdown(res: BenchResult) -> str:
    """The report: machine, compression cost, stages, baselines, store, end to end, targets."""
    m = res.machine
    lines = [
        "# semtoken-rag benchmark",
        "",
        f"Command: `{res.command}`",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('nproc')} cores, torch {m.get('torch')} with "
        f"{m.get('torch_threads')} threads, BLAS threads "
        f"{[b.get('threads') for b in m.get('blas_threads', [])]}, CUDA: {m.get('cuda')}.",
        "",
    ]
    lines += _device_lines(res)
    comp = res.compression
    if comp and comp.rows:
        lines += ["## Compression cost (ms per 1k tokens, medians)", ""]
        body = []
        for r in comp.rows:
            s = r.summary()
            body.append(
                [
                    str(r.tokens),
                    str(r.chunks),
                    str(r.units),
                    str(r.repeats),
                    f"{s['core_ms_per_1k']:.2f}",
                    f"{s['warm_repeat_query_ms_per_1k']:.2f}",
                    f"{s['warm_fresh_query_ms_per_1k']:.2f}",
                    f"{s['warm_store_only_ms_per_1k']:.2f}",
                    f"{s['cold_ms_per_1k']:.1f}",
                    f"{s['raw_forward_ms_per_1k']:.1f}",
                    f"{s['cold_over_raw']:.3f}",
                    f"{r.core_peak_bytes / 2**20:.1f}",
                    f"{r.warm_peak_bytes / 2**20:.1f}",
                    f"{r.rss_high_water_bytes / 2**20:.0f}",
                ]
            )
        lines += _table(
            [
                "tokens",
                "chunks",
                "units",
                "reps",
                "core",
                "warm (same q)",
                "warm (fresh q)",
                "warm (store only)",
                "cold",
                "raw fwd",
                "cold/raw",
                "core peak MiB",
                "warm peak MiB",
                "RSS MiB",
            ],
            body,
        )
        ex = ", ".join(f"{k} {v:.3f}" for k, v in comp.exponents.items() if v is not None)
        lines += ["", f"Fitted scaling exponents k (t ~ n^k, least squares on log-log): {ex}.", ""]
        stages = list(comp.rows[0].stages_ms)
        lines += ["### Core stages alone (ms per 1k tokens)", ""]
        lines += _table(
            ["tokens", *stages],
            [
                [str(r.tokens), *(f"{r.stages_ms[s] * r.per_1k:.3f}" for s in stages)]
                for r in comp.rows
            ],
        )
        wst = list(comp.rows[0].warm_stage_ms)
        lines += ["", "### Warm compression by engine stage (ms per 1k tokens, one call)", ""]
        lines += _table(
            ["tokens", *wst],
            [
                [str(r.tokens), *(f"{r.warm_stage_ms[s] * r.per_1k:.3f}" for s in wst)]
                for r in comp.rows
            ],
        )
        lines.append("")
        if comp.baselines:
            lines += [
                f"## Baselines on the same inputs (ratio {res.settings.get('ratio', 0.5)})",
                "",
                "LongLLMLingua is capped at "
                f"{res.settings.get('lingua_max_tokens')} tokens and one timed run "
                "(seconds per 1k tokens on a CPU).  x columns: baseline time / ours.",
                "",
            ]
            lines += _table(
                [
                    "method",
                    "tokens",
                    "reps",
                    "ms / 1k",
                    "achieved",
                    "x ours cold",
                    "x ours warm (same q)",
                    "x ours warm (fresh q)",
                    "note",
                ],
                [
                    [
                        b.method,
                        str(b.tokens),
                        str(b.repeats),
                        f"{b.ms_per_1k:.1f}",
                        f"{b.achieved_ratio:.2f}",
                        f"{b.over_cold:.1f}",
                        f"{b.over_warm_repeat:.0f}",
                        f"{b.over_warm_fresh:.0f}",
                        b.note,
                    ]
                    for b in comp.baselines
                ],
            )
            lines.append("")
    if res.encoder:
        lines += _encoder_lines(res.encoder)
    if res.store is not None:
        lines += res.store.markdown()
    if res.endtoend:
        rd = res.reader
        lines += [
            f"## End to end: {rd.get('reader')} on {rd.get('device')} ({rd.get('dtype')}, "
            f"{rd.get('attn')}), {rd.get('max_new_tokens')} new tokens max",
            "",
        ]
        lines += _table(
            [
                "ctx tokens",
                "ratio",
                "achieved",
                "full TTFT",
                "full total",
                "compress cold / warm",
                "compr. TTFT",
                "compr. total",
                "TTFT x cold / warm",
                "total x cold / warm",
                "KV MiB full -> compr.",
            ],
            [
                [
                    str(r.context_tokens),
                    f"{r.ratio}",
                    f"{r.achieved_ratio:.2f}",
                    f"{r.full_ttft_ms:.1f}",
                    f"{r.full_total_ms:.1f}",
                    f"{r.compress_cold_ms:.1f} / {r.compress_warm_ms:.1f}",
                    f"{r.compressed_ttft_ms:.1f}",
                    f"{r.compressed_total_ms:.1f}",
                    f"{r.ttft_speedup_cold:.2f} / {r.ttft_speedup_warm:.2f}",
                    f"{r.total_speedup_cold:.2f} / {r.total_speedup_warm:.2f}",
                    f"{r.full_kv_bytes / 2**20:.1f} -> {r.compressed_kv_bytes / 2**20:.1f}",
                ]
                for r in res.endtoend
            ],
        )
        lines += [
            "",
            "(times in ms, medians; compressed times include compression in the x columns)",
            "",
            "Reader prefill (tokens/s over the synchronised prefill clock), GPU peak of the "
            "size (PyTorch allocator, 0 on a CPU) and the attention kernels the answers report:",
            "",
        ]
        lines += _table(
            [
                "ctx tokens",
                "ratio",
                "prefill tok/s full",
                "prefill tok/s compr.",
                "GPU peak MiB",
                "kernels",
            ],
            [
                [
                    str(r.context_tokens),
                    f"{r.ratio}",
                    f"{r.full_prefill_tokens_per_s:,.0f}",
                    f"{r.compressed_prefill_tokens_per_s:,.0f}",
                    f"{r.gpu_peak_bytes / 2**20:.0f}",
                    ", ".join(r.kernels),
                ]
                for r in res.endtoend
            ],
        )
        lines.append("")
    lines += ["## Targets (measured, not asserted)", ""]
    lines += _table(
        ["target", "goal", "measured", "met"],
        [
            [t.name, t.goal, t.measured, {True: "yes", False: "**no**", None: "n/a"}[t.met]]
            for t in targets(res)
        ],
    )
    return "\n".join(lines) + "\n"


def plot(res: BenchResult, path: Path) -> None:
    """Log-log cost per call against tokens; end-to-end TTFT when measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_panels = 2 if res.endtoend else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels, 4.5), squeeze=False)
    ax = axes[0][0]
    comp = res.compression
    if comp and comp.rows:
        ns = [r.tokens for r in comp.rows]
        for attr, label in (
            ("core_ms", "core"),
            ("warm_repeat_query_ms", "warm, same query"),
            ("warm_fresh_query_ms", "warm, fresh query"),
            ("cold_ms", "cold"),
            ("raw_forward_ms", "raw encoder forward"),
        ):
            ax.plot(ns, [getattr(r, attr) for r in comp.rows], marker="o", label=label)
        for name in dict.fromkeys(b.method for b in comp.baselines):
            bs = [b for b in comp.baselines if b.method == name]
            ax.plot([b.tokens for b in bs], [b.ms for b in bs], marker="s", ls="--", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("context tokens")
    ax.set_ylabel("ms per compression")
    ax.set_title("Compression cost")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if res.endtoend:
        ax2 = axes[0][1]
        sizes = sorted({r.context_tokens for r in res.endtoend})
        full = {r.context_tokens: r.full_ttft_ms for r in res.endtoend}
        ax2.plot(sizes, [full[s] for s in sizes], marker="o", label="full context")
        for ratio in sorted({r.ratio for r in res.endtoend}, reverse=True):
            rs = sorted(
                (r for r in res.endtoend if r.ratio == ratio), key=lambda r: r.context_tokens
            )
            ax2.plot(
                [r.context_tokens for r in rs],
                [r.compress_cold_ms + r.compressed_ttft_ms for r in rs],
                marker="o",
                label=f"ratio {ratio}, cold",
            )
            ax2.plot(
                [r.context_tokens for r in rs],
                [r.compress_warm_ms + r.compressed_ttft_ms for r in rs],
                marker="s",
                ls="--",
                label=f"ratio {ratio}, warm",
            )
        ax2.set_xlabel("context tokens (reader)")
        ax2.set_ylabel("TTFT ms (compression included)")
        ax2.set_title("End to end")
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(res: BenchResult, out_dir: Path) -> dict[str, Path]:
    """Write ``bench.json``, ``bench.md`` and ``bench.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / JSON_NAME, "markdown": out_dir / MD_NAME, "png": out_dir / PNG_NAME}
    paths["json"].write_text(json.dumps(to_json(res), indent=2), encoding="utf-8")
    paths["markdown"].write_text(to_markdown(res), encoding="utf-8")
    plot(res, paths["png"])
    return paths
