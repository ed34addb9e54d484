"""The benchmark's markdown report (``bench.md``): one section per measured part of the run.

Each table is declared as its columns, a header and how to format one cell, so a column's
heading and its figure sit on one line and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from semtoken_lab.bench.compression_rows import BaselineRow, CompressionReport, CompressionRow
from semtoken_lab.bench.encoder import EncoderRow
from semtoken_lab.bench.endtoend import EndToEndRow
from semtoken_lab.bench.result import BenchResult
from semtoken_lab.bench.targets import targets

Row = TypeVar("Row")
MiB = 2**20


def _per_1k(key: str, spec: str) -> Callable[[CompressionRow], str]:
    """A cell showing one of :meth:`CompressionRow.summary`'s figures."""
    return lambda r: format(r.summary()[key], spec)


_COMPRESSION_COLUMNS: list[tuple[str, Callable[[CompressionRow], str]]] = [
    ("tokens", lambda r: str(r.tokens)),
    ("chunks", lambda r: str(r.chunks)),
    ("units", lambda r: str(r.units)),
    ("reps", lambda r: str(r.repeats)),
    ("core", _per_1k("core_ms_per_1k", ".2f")),
    ("warm (same q)", _per_1k("warm_repeat_query_ms_per_1k", ".2f")),
    ("warm (fresh q)", _per_1k("warm_fresh_query_ms_per_1k", ".2f")),
    ("warm (store only)", _per_1k("warm_store_only_ms_per_1k", ".2f")),
    ("cold", _per_1k("cold_ms_per_1k", ".1f")),
    ("raw fwd", _per_1k("raw_forward_ms_per_1k", ".1f")),
    ("cold/raw", _per_1k("cold_over_raw", ".3f")),
    ("core peak MiB", lambda r: f"{r.core_peak_bytes / MiB:.1f}"),
    ("warm peak MiB", lambda r: f"{r.warm_peak_bytes / MiB:.1f}"),
    ("RSS MiB", lambda r: f"{r.rss_high_water_bytes / MiB:.0f}"),
]

_BASELINE_COLUMNS: list[tuple[str, Callable[[BaselineRow], str]]] = [
    ("method", lambda b: b.method),
    ("tokens", lambda b: str(b.tokens)),
    ("reps", lambda b: str(b.repeats)),
    ("ms / 1k", lambda b: f"{b.ms_per_1k:.1f}"),
    ("achieved", lambda b: f"{b.achieved_ratio:.2f}"),
    ("x ours cold", lambda b: f"{b.over_cold:.1f}"),
    ("x ours warm (same q)", lambda b: f"{b.over_warm_repeat:.0f}"),
    ("x ours warm (fresh q)", lambda b: f"{b.over_warm_fresh:.0f}"),
    ("note", lambda b: b.note),
]

_ENCODER_COLUMNS: list[tuple[str, Callable[[EncoderRow], str]]] = [
    ("dtype", lambda r: r.dtype),
    ("batch", lambda r: str(r.batch_size)),
    ("fingerprints tok/s", lambda r: f"{r.fingerprint_tokens_per_s:,.0f}"),
    ("raw fwd tok/s", lambda r: f"{r.raw_tokens_per_s:,.0f}"),
    ("fp / raw", lambda r: f"{r.fingerprint_over_raw:.3f}"),
    ("GPU peak MiB", lambda r: f"{r.gpu_peak_bytes / MiB:.0f}"),
]

_ENDTOEND_COLUMNS: list[tuple[str, Callable[[EndToEndRow], str]]] = [
    ("ctx tokens", lambda r: str(r.context_tokens)),
    ("ratio", lambda r: f"{r.ratio}"),
    ("achieved", lambda r: f"{r.achieved_ratio:.2f}"),
    ("full TTFT", lambda r: f"{r.full_ttft_ms:.1f}"),
    ("full total", lambda r: f"{r.full_total_ms:.1f}"),
    ("compress cold / warm", lambda r: f"{r.compress_cold_ms:.1f} / {r.compress_warm_ms:.1f}"),
    ("compr. TTFT", lambda r: f"{r.compressed_ttft_ms:.1f}"),
    ("compr. total", lambda r: f"{r.compressed_total_ms:.1f}"),
    ("TTFT x cold / warm", lambda r: f"{r.ttft_speedup_cold:.2f} / {r.ttft_speedup_warm:.2f}"),
    ("total x cold / warm", lambda r: f"{r.total_speedup_cold:.2f} / {r.total_speedup_warm:.2f}"),
    (
        "KV MiB full -> compr.",
        lambda r: f"{r.full_kv_bytes / MiB:.1f} -> {r.compressed_kv_bytes / MiB:.1f}",
    ),
]

_PREFILL_COLUMNS: list[tuple[str, Callable[[EndToEndRow], str]]] = [
    ("ctx tokens", lambda r: str(r.context_tokens)),
    ("ratio", lambda r: f"{r.ratio}"),
    ("prefill tok/s full", lambda r: f"{r.full_prefill_tokens_per_s:,.0f}"),
    ("prefill tok/s compr.", lambda r: f"{r.compressed_prefill_tokens_per_s:,.0f}"),
    ("GPU peak MiB", lambda r: f"{r.gpu_peak_bytes / MiB:.0f}"),
    ("kernels", lambda r: ", ".join(r.kernels)),
]

_MET = {True: "yes", False: "**no**", None: "n/a"}


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def _column_table(
    columns: Sequence[tuple[str, Callable[[Row], str]]], items: Iterable[Row]
) -> list[str]:
    """A :func:`_table` with one line per item, each cell formatted by its column."""
    return _table([head for head, _ in columns], [[cell(x) for _, cell in columns] for x in items])


def to_markdown(res: BenchResult) -> str:
    """The report: machine, compression cost, stages, baselines, store, end to end, targets."""
    lines = _machine_lines(res.command, res.machine) + _device_lines(res.device)
    comp = res.compression
    if comp and comp.rows:
        lines += _compression_lines(comp)
        if comp.baselines:
            lines += _baseline_lines(comp.baselines, res.settings)
    if res.encoder:
        lines += _encoder_lines(res.encoder)
    if res.store is not None:
        lines += res.store.markdown()
    if res.endtoend:
        lines += _endtoend_lines(res.endtoend, res.reader)
    lines += ["## Targets (measured, not asserted)", ""]
    lines += _table(
        ["target", "goal", "measured", "met"],
        [[t.name, t.goal, t.measured, _MET[t.met]] for t in targets(res)],
    )
    return "\n".join(lines) + "\n"


def _machine_lines(command: str, m: dict[str, Any]) -> list[str]:
    """Title, command and the host's facts (CPU, threads, CUDA)."""
    return [
        "# semtoken-rag benchmark",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {m.get('cpu_model')}, {m.get('nproc')} cores, torch {m.get('torch')} with "
        f"{m.get('torch_threads')} threads, BLAS threads "
        f"{[b.get('threads') for b in m.get('blas_threads', [])]}, CUDA: {m.get('cuda')}.",
        "",
    ]


def _device_lines(d: dict[str, Any]) -> list[str]:
    """The benchmark device, and a warning when any model ran on random weights."""
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


def _compression_lines(comp: CompressionReport) -> list[str]:
    """Cost per 1k tokens, the fitted exponents, then the core and warm stage breakdowns."""
    lines = ["## Compression cost (ms per 1k tokens, medians)", ""]
    lines += _column_table(_COMPRESSION_COLUMNS, comp.rows)
    ex = ", ".join(f"{k} {v:.3f}" for k, v in comp.exponents.items() if v is not None)
    lines += ["", f"Fitted scaling exponents k (t ~ n^k, least squares on log-log): {ex}.", ""]
    stages = list(comp.rows[0].stages_ms)
    lines += ["### Core stages alone (ms per 1k tokens)", ""]
    lines += _table(
        ["tokens", *stages],
        [[str(r.tokens), *(f"{r.stages_ms[s] * r.per_1k:.3f}" for s in stages)] for r in comp.rows],
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
    return [*lines, ""]


def _baseline_lines(baselines: list[BaselineRow], settings: dict[str, Any]) -> list[str]:
    """The baselines on the same inputs, their cost relative to ours."""
    lines = [
        f"## Baselines on the same inputs (ratio {settings.get('ratio', 0.5)})",
        "",
        "LongLLMLingua is capped at "
        f"{settings.get('lingua_max_tokens')} tokens and one timed run "
        "(seconds per 1k tokens on a CPU).  x columns: baseline time / ours.",
        "",
    ]
    return [*lines, *_column_table(_BASELINE_COLUMNS, baselines), ""]


def _encoder_lines(rows: list[EncoderRow]) -> list[str]:
    """Fingerprinting against the raw encoder forward, per dtype and batch size."""
    lines = [
        "## Encoder: fingerprinting vs raw forward (tokens/s, medians)",
        "",
        f"Workload: {rows[0].tokens} encoder tokens, {rows[0].windows} windows at batch "
        f"{rows[0].batch_size}.  fp / raw: fingerprinting time over raw forward time.",
        "",
    ]
    return [*lines, *_column_table(_ENCODER_COLUMNS, rows), ""]


def _endtoend_lines(rows: list[EndToEndRow], rd: dict[str, Any]) -> list[str]:
    """The reader's times full vs compressed, then its prefill rate, GPU peak and kernels."""
    lines = [
        f"## End to end: {rd.get('reader')} on {rd.get('device')} ({rd.get('dtype')}, "
        f"{rd.get('attn')}), {rd.get('max_new_tokens')} new tokens max",
        "",
    ]
    lines += _column_table(_ENDTOEND_COLUMNS, rows)
    lines += [
        "",
        "(times in ms, medians; compressed times include compression in the x columns)",
        "",
        "Reader prefill (tokens/s over the synchronised prefill clock), GPU peak of the "
        "size (PyTorch allocator, 0 on a CPU) and the attention kernels the answers report:",
        "",
    ]
    return [*lines, *_column_table(_PREFILL_COLUMNS, rows), ""]
