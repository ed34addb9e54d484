"""Cost of compression per 1k tokens: core, warm, cold, raw encoder forward, and baselines.

For each workload size the same chunks and question go through:

* **core** — fingerprints given: ``Compressor.plan`` + ``Compressor.render`` on a
  ``Compressor.prepare``-d context (context arrays, spans, entropy, scoring, dedup, budgeted
  selection, render), plus each stage timed through the pipeline's own ``on_stage`` hook;
* **warm** — ``Compressor.compress`` with every chunk's fingerprints already in the engine's
  in-memory store (one ``Compressor.fingerprints`` call beforehand: no encoder call for the
  chunks), with the *same* query again (memoised query vector: no encoder work at all) and
  with a *fresh* query (one short encoder pass for the question); and **store only**: a new
  ``Compressor`` per call over a persistent :class:`~semtoken_rag.store.FingerprintStore`
  holding each chunk as a short document (exact-key hits: SQLite reads, fresh query, no
  in-process memo of token costs or segmentation — a serving process seeing these chunks for
  the first time);
* **cold** — a new ``Compressor`` with no store and a new token counter: tokenise, encoder
  forward over every window, pool, count, core;
* **raw forward** — ``model(**batch)`` alone over exactly the windows the encoder builds;
* **baselines** — ``embed-filter`` and ``longllmlingua`` from
  :data:`semtoken_lab.eval.methods.METHODS` on the same chunks at the same ratio (budget in
  reader tokens, as in the harness).  LongLLMLingua is capped (size and repeats): it costs
  seconds per 1k tokens on a CPU.

The rows and the report are :mod:`semtoken_lab.bench.compression_rows`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from semtoken_rag.budgets import ratio_tokens

from semtoken_lab.bench.cases import Doc, Workload, build_workload
from semtoken_lab.bench.compression_rows import BaselineRow, CompressionReport, CompressionRow
from semtoken_lab.bench.device import auto_device, engine_config, gpu_peak, is_cuda
from semtoken_lab.bench.encoder import raw_forward
from semtoken_lab.bench.timing import (
    Timing,
    fit_exponent,
    measure,
    rss_high_water_bytes,
    traced_peak_bytes,
)

#: Fitted scaling exponents: (report key, CompressionRow attribute of the timing).
_EXPONENTS = (
    ("core", "core_ms"),
    ("warm_repeat_query", "warm_repeat_query_ms"),
    ("warm_fresh_query", "warm_fresh_query_ms"),
    ("warm_store_only", "warm_store_only_ms"),
    ("cold", "cold_ms"),
    ("raw_forward", "raw_forward_ms"),
)

#: ``CompressionRow.warm_stage_ms`` keys and the ``CompressionResult.timings`` field of each.
_WARM_STAGES = (
    ("store_ms", "store_ms"),
    ("encode_ms", "encode_ms"),
    ("prepare_ms", "count_ms"),
    ("segment_ms", "segment_ms"),
    ("core_ms", "core_ms"),
    ("render_ms", "render_ms"),
)


def stage_breakdown(
    comp: Any, prepared: Any, question: str, ratio: float, repeats: int
) -> dict[str, float]:
    """Median ms of each core stage and of rendering, measured inside the real pipeline.

    ``Compressor.plan(..., on_stage=...)`` reports each stage's duration as the pipeline runs
    it (:data:`semtoken_rag.core.pipeline.STAGES`), so what is timed is the engine's own code,
    not a copy of it.
    """
    samples: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds * 1e3)

    plan = None
    for _ in range(max(1, repeats)):
        plan = comp.plan(prepared, question, ratio=ratio, on_stage=record)
    out = {name: float(np.median(v)) for name, v in samples.items()}
    out["render"] = measure(lambda: comp.render(plan), repeats).median_ms
    return out


def run_compression(
    docs: list[Doc],
    sizes: Sequence[int],
    repeats: int,
    *,
    ratio: float = 0.5,
    on_row: Callable[[str, Any], None] | None = None,
    device: str | None = None,
    encoder_model: str | None = None,
) -> CompressionReport:
    """Run our side of the compression benchmark (see the module docstring).

    Args:
        docs: Source documents (:func:`semtoken_lab.bench.cases.load_docs`).
        sizes: Workload sizes in encoder tokens.
        repeats: Timed repeats (halved, at least 1, above 16k tokens).  Encoder-bound paths
            get no untimed warm-up above 4k tokens: the model is already warm from
            filling the store and a 64k-token warm-up would cost as much as the measurement.
        ratio: Compression ratio.
        on_row: Called with ``("row", CompressionRow)`` as rows arrive.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``None`` (the engine's ``auto``).  On CUDA every
            timing is taken with CUDA events after a warm-up, and the raw forward's batches are
            on the device before its clock starts.
        encoder_model: Encoder id or folder (default: the engine's default encoder).
    """
    from semtoken_rag import Compressor, SemTokenConfig

    engine = engine_config(device, encoder_model)
    base = Compressor(SemTokenConfig(**engine))
    enc: Any = base.encoder  # the real TransformerEncoder (tokenizer, model, calls)
    report = CompressionReport()
    with tempfile.TemporaryDirectory(prefix="semtoken-bench-") as tmp:
        bench = _Bench(engine, enc, base.counter, device or str(enc.device), ratio, Path(tmp))
        for n_tok in sizes:
            row = _measure_size(bench, docs, n_tok, repeats)
            report.rows.append(row)
            if on_row:
                on_row("row", row)
    ns = [float(r.tokens) for r in report.rows]
    for key, attr in _EXPONENTS:
        report.exponents[key] = fit_exponent(ns, [getattr(r, attr) for r in report.rows])
    return report


@dataclass(frozen=True)
class _Bench:
    """What every workload size is measured with (see :func:`run_compression`)."""

    engine: dict[str, Any]
    enc: Any
    counter: Any  # the token counter shared by the warm compressors
    dev: str
    ratio: float
    tmp: Path  # where the persistent stores of ``store only`` live

    def new_counter(self) -> Any:
        """A new token counter: no memo of token costs, as in a new process."""
        from semtoken_rag.tokens import TokenCounter

        return TokenCounter(self.enc.tokenizer, name=getattr(self.enc, "model_id", None))


def _measure_size(bench: _Bench, docs: list[Doc], n_tok: int, repeats: int) -> CompressionRow:
    """One row: every path over the same workload of ``n_tok`` encoder tokens."""
    from semtoken_rag import Compressor, SemTokenConfig

    wl: Workload = build_workload(bench.enc.tokenizer, docs, n_tok)
    chunks = list(wl.chunks)
    reps = repeats if n_tok <= 16000 else max(1, repeats // 2)
    ratio, dev = bench.ratio, bench.dev
    comp = Compressor(SemTokenConfig(**bench.engine), encoder=bench.enc, counter=bench.counter)
    fps, _ = comp.fingerprints(chunks)  # every chunk in the engine's store
    comp.compress(chunks, wl.question, ratio=ratio)  # memoise the query vector
    prepared = comp.prepare(chunks)
    plan = comp.plan(prepared, wl.question, ratio=ratio)

    def core_path() -> Any:
        return comp.render(comp.plan(prepared, wl.question, ratio=ratio))

    def warm_path() -> Any:
        return comp.compress(chunks, wl.question, ratio=ratio)

    core = measure(core_path, reps * 2)
    stages = stage_breakdown(comp, prepared, wl.question, ratio, reps * 2)
    warm_rep = measure(warm_path, reps, device=dev)
    warm_stage = warm_path().timings
    fresh = iter(wl.fresh_questions * (reps + 2))
    warm_fresh = measure(lambda: comp.compress(chunks, next(fresh), ratio=ratio), reps, device=dev)
    warm_disk = _store_only_timing(bench, chunks, fps, wl.question, reps, n_tok)
    cold = _cold_fields(bench, chunks, wl.question, reps, enc_warmup=1 if n_tok <= 4000 else 0)
    return CompressionRow(
        target_tokens=n_tok,
        tokens=wl.tokens,
        chunks=len(chunks),
        words=int(sum(c.n_words for c in prepared.chunks)),
        units=int(plan.arrays.n_units),
        repeats=reps,
        core_ms=core.median_ms,
        stages_ms=stages,
        warm_repeat_query_ms=warm_rep.median_ms,
        warm_fresh_query_ms=warm_fresh.median_ms,
        warm_store_only_ms=warm_disk.median_ms,
        warm_stage_ms={key: getattr(warm_stage, attr) for key, attr in _WARM_STAGES},
        **cold,
        core_peak_bytes=traced_peak_bytes(core_path),
        warm_peak_bytes=traced_peak_bytes(warm_path),
        rss_high_water_bytes=rss_high_water_bytes(),
        device=dev,
    )


def _store_only_timing(
    bench: _Bench, chunks: list[str], fps: Any, question: str, reps: int, n_tok: int
) -> Timing:
    """``warm (store only)``: a new ``Compressor`` per call over a persistent store holding
    every chunk as a short document of its own."""
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.store import FingerprintStore

    with FingerprintStore(bench.tmp / f"s{n_tok}") as store:
        store.put(chunks, fps, bench.enc.cache_id)  # each chunk a document of its own

        def store_only() -> None:
            # A fresh serving process: fingerprints on disk, every in-process memo
            # (query vectors, token costs, segmentation) empty.
            fresh_comp = Compressor(
                SemTokenConfig(**bench.engine),
                encoder=bench.enc,
                store=store,
                counter=bench.new_counter(),
            )
            fresh_comp.compress(chunks, question, ratio=bench.ratio)

        return measure(store_only, reps, device=bench.dev)


def _cold_fields(
    bench: _Bench, chunks: list[str], question: str, reps: int, enc_warmup: int
) -> dict[str, Any]:
    """The cold path, and the raw encoder forward over the windows it encodes (its floor):
    ``CompressionRow``'s ``windows``, ``cold_ms``, ``raw_forward_ms`` and ``gpu_peak_bytes``."""
    from semtoken_rag import Compressor, SemTokenConfig

    def cold() -> None:
        fresh_comp = Compressor(
            SemTokenConfig(cache_embeddings=False, **bench.engine),
            encoder=bench.enc,
            counter=bench.new_counter(),
        )
        fresh_comp.compress(chunks, question, ratio=bench.ratio)

    gpu_warmup = max(enc_warmup, int(is_cuda(bench.dev)))  # GPU warm-ups are cheap
    with gpu_peak(bench.dev) as cold_peak:
        cold_t = measure(cold, reps, warmup=gpu_warmup, device=bench.dev)
    batches = bench.enc.window_batches(chunks)
    raw_t = measure(raw_forward(bench.enc, batches), reps, warmup=gpu_warmup, device=bench.dev)
    return {
        "windows": int(sum(len(i) for i, _ in batches)),
        "cold_ms": cold_t.median_ms,
        "raw_forward_ms": raw_t.median_ms,
        "gpu_peak_bytes": cold_peak.bytes,
    }


def run_baselines(
    docs: list[Doc],
    report: CompressionReport,
    repeats: int,
    *,
    ratio: float = 0.5,
    methods: Sequence[str] = ("embed-filter", "longllmlingua"),
    lingua_max_tokens: int = 4000,
    on_row: Callable[[str, Any], None] | None = None,
    device: str | None = None,
    encoder_model: str | None = None,
    reader: str = "smollm2",
) -> None:
    """The baselines on the same workloads as ``report.rows``, appended to ``report.baselines``.

    LongLLMLingua runs last (it is by far the slowest) on workloads up to
    ``lingua_max_tokens``, once, with no untimed warm-up beyond loading its model.  The
    baselines' models run on ``device``, SemToken's device (like with like), and are timed
    the same way (CUDA events on a GPU).
    """
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.tokens import load_counter

    from semtoken_lab.eval.method_env import MethodEnv
    from semtoken_lab.eval.methods import build_method

    engine = engine_config(device, encoder_model)
    enc_tok = load_counter(SemTokenConfig(**engine).encoder_model).tokenizer  # workloads as ours
    dev = device or auto_device()
    env = MethodEnv(reader=reader, device=dev, encoder_model=encoder_model)
    order = sorted(methods, key=lambda m: m == "longllmlingua")
    for name in order:
        fn = None
        for row in report.rows:
            if name == "longllmlingua" and row.target_tokens > lingua_max_tokens:
                continue
            wl = build_workload(enc_tok, docs, row.target_tokens)
            chunks = list(wl.chunks)
            if fn is None:
                fn = build_method(name, env)
                fn(chunks[:1], wl.question, 64)  # load models outside the timings
            b = _baseline_row(name, fn, env.count, row, wl, ratio, dev)
            report.baselines.append(b)
            if on_row:
                on_row("baseline", b)


def _baseline_row(
    name: str,
    fn: Callable[[Sequence[str], str, int], str],
    count: Callable[[str], int],
    row: CompressionRow,
    wl: Workload,
    ratio: float,
    dev: str,
) -> BaselineRow:
    """Time one baseline on the workload of ``row`` (budget and ratio in reader tokens,
    ``count``); LongLLMLingua once, with no warm-up."""
    capped = name == "longllmlingua"
    chunks = list(wl.chunks)
    budget_reader = ratio_tokens(ratio, sum(count(c) for c in chunks))
    out: list[str] = []
    t = measure(
        lambda: out.append(fn(chunks, wl.question, budget_reader)),
        1 if capped else row.repeats,
        warmup=0 if capped or row.target_tokens > 4000 else 1,
        device=dev,
    )
    return BaselineRow(
        method=name,
        target_tokens=row.target_tokens,
        tokens=wl.tokens,
        repeats=len(t.samples_ms),
        ms=t.median_ms,
        achieved_ratio=_ratio_of(count, chunks, out[-1]),
        over_cold=t.median_ms / row.cold_ms,
        over_warm_repeat=t.median_ms / row.warm_repeat_query_ms,
        over_warm_fresh=t.median_ms / row.warm_fresh_query_ms,
        note="1 repeat, no warm-up (capped)" if capped else "",
    )


def _ratio_of(count: Callable[[str], int], chunks: Sequence[str], out: str) -> float:
    """The reader tokens of ``out`` over those of ``chunks`` (the achieved ratio)."""
    total = sum(count(c) for c in chunks)
    return count(out) / total if total else 0.0
