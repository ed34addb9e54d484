# Timed closures are defined and called inside one loop iteration: late binding is intended.
# ruff: noqa: B023
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
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semtoken_lab.bench.cases import Doc, Workload, build_workload
from semtoken_lab.bench.device import auto_device, engine_config, gpu_peak, is_cuda
from semtoken_lab.bench.encoder import raw_forward
from semtoken_lab.bench.timing import fit_exponent, measure, rss_high_water_bytes, traced_peak_bytes

logger = logging.getLogger(__name__)

QUERY = "Who does the main character meet at the end?"


@dataclass(frozen=True)
class CompressionRow:
    """Timings of one workload size (ms are medians over the whole workload)."""

    target_tokens: int
    tokens: int
    chunks: int
    words: int
    units: int
    windows: int
    repeats: int
    core_ms: float
    stages_ms: dict[str, float]
    warm_repeat_query_ms: float
    warm_fresh_query_ms: float
    warm_store_only_ms: float
    warm_stage_ms: dict[str, float]
    cold_ms: float
    raw_forward_ms: float
    core_peak_bytes: int
    warm_peak_bytes: int
    rss_high_water_bytes: int
    device: str = "cpu"
    gpu_peak_bytes: int = 0  # PyTorch allocator peak on the GPU over the cold runs (0 on CPU)

    @property
    def per_1k(self) -> float:
        return 1000.0 / max(self.tokens, 1)

    def summary(self) -> dict[str, float]:
        """The headline figures in ms per 1k tokens (and the cold/raw ratio)."""
        k = self.per_1k
        return {
            "core_ms_per_1k": self.core_ms * k,
            "warm_repeat_query_ms_per_1k": self.warm_repeat_query_ms * k,
            "warm_fresh_query_ms_per_1k": self.warm_fresh_query_ms * k,
            "warm_store_only_ms_per_1k": self.warm_store_only_ms * k,
            "cold_ms_per_1k": self.cold_ms * k,
            "raw_forward_ms_per_1k": self.raw_forward_ms * k,
            "cold_over_raw": self.cold_ms / self.raw_forward_ms if self.raw_forward_ms else 0.0,
        }


@dataclass(frozen=True)
class BaselineRow:
    """One baseline on one workload, with its cost relative to ours."""

    method: str
    target_tokens: int
    tokens: int
    repeats: int
    ms: float
    achieved_ratio: float
    over_cold: float
    over_warm_repeat: float
    over_warm_fresh: float
    note: str = ""

    @property
    def ms_per_1k(self) -> float:
        return self.ms * 1000.0 / max(self.tokens, 1)


@dataclass
class CompressionReport:
    """All rows of the compression benchmark and the fitted scaling exponents."""

    rows: list[CompressionRow] = field(default_factory=list)
    baselines: list[BaselineRow] = field(default_factory=list)
    exponents: dict[str, float | None] = field(default_factory=dict)


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


def _ratio_of(count: Callable[[str], int], chunks: Sequence[str], out: str) -> float:
    total = sum(count(c) for c in chunks)
    return count(out) / total if total else 0.0


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
    from semtoken_rag.store import FingerprintStore
    from semtoken_rag.tokens import TokenCounter

    engine = engine_config(device, encoder_model)
    base = Compressor(SemTokenConfig(**engine))
    enc: Any = base.encoder  # the real TransformerEncoder (tokenizer, model, calls)
    dev = device or str(enc.device)
    report = CompressionReport()

    def new_counter() -> TokenCounter:
        return TokenCounter(enc.tokenizer, name=getattr(enc, "model_id", None))

    with tempfile.TemporaryDirectory(prefix="semtoken-bench-") as tmp:
        for n_tok in sizes:
            wl: Workload = build_workload(enc.tokenizer, docs, n_tok)
            chunks = list(wl.chunks)
            reps = repeats if n_tok <= 16000 else max(1, repeats // 2)
            enc_warmup = 1 if n_tok <= 4000 else 0
            comp = Compressor(SemTokenConfig(**engine), encoder=enc, counter=base.counter)
            fps, _ = comp.fingerprints(chunks)  # every chunk in the engine's store
            comp.compress(chunks, wl.question, ratio=ratio)  # memoise the query vector
            prepared = comp.prepare(chunks)
            plan = comp.plan(prepared, wl.question, ratio=ratio)

            def core_path() -> Any:
                return comp.render(comp.plan(prepared, wl.question, ratio=ratio))

            core = measure(core_path, reps * 2)
            stages = stage_breakdown(comp, prepared, wl.question, ratio, reps * 2)
            warm_rep = measure(
                lambda: comp.compress(chunks, wl.question, ratio=ratio), reps, device=dev
            )
            warm_stage = comp.compress(chunks, wl.question, ratio=ratio).timings
            fresh = iter(wl.fresh_questions * (reps + 2))
            warm_fresh = measure(
                lambda: comp.compress(chunks, next(fresh), ratio=ratio), reps, device=dev
            )
            with FingerprintStore(Path(tmp) / f"s{n_tok}") as store:
                store.put(chunks, fps, enc.cache_id)  # each chunk a document of its own

                def store_only() -> None:
                    # A fresh serving process: fingerprints on disk, every in-process memo
                    # (query vectors, token costs, segmentation) empty.
                    fresh_comp = Compressor(
                        SemTokenConfig(**engine), encoder=enc, store=store, counter=new_counter()
                    )
                    fresh_comp.compress(chunks, wl.question, ratio=ratio)

                warm_disk = measure(store_only, reps, device=dev)

            def cold() -> None:
                fresh_comp = Compressor(
                    SemTokenConfig(cache_embeddings=False, **engine),
                    encoder=enc,
                    counter=new_counter(),
                )
                fresh_comp.compress(chunks, wl.question, ratio=ratio)

            gpu_warmup = max(enc_warmup, int(is_cuda(dev)))  # GPU warm-ups are cheap
            with gpu_peak(dev) as cold_peak:
                cold_t = measure(cold, reps, warmup=gpu_warmup, device=dev)
            batches = enc.window_batches(chunks)
            raw_t = measure(raw_forward(enc, batches), reps, warmup=gpu_warmup, device=dev)
            row = CompressionRow(
                target_tokens=n_tok,
                tokens=wl.tokens,
                chunks=len(chunks),
                words=int(sum(c.n_words for c in prepared.chunks)),
                units=int(plan.arrays.n_units),
                windows=int(sum(len(i) for i, _ in batches)),
                repeats=reps,
                core_ms=core.median_ms,
                stages_ms=stages,
                warm_repeat_query_ms=warm_rep.median_ms,
                warm_fresh_query_ms=warm_fresh.median_ms,
                warm_store_only_ms=warm_disk.median_ms,
                warm_stage_ms={
                    "store_ms": warm_stage.store_ms,
                    "encode_ms": warm_stage.encode_ms,
                    "prepare_ms": warm_stage.count_ms,
                    "segment_ms": warm_stage.segment_ms,
                    "core_ms": warm_stage.core_ms,
                    "render_ms": warm_stage.render_ms,
                },
                cold_ms=cold_t.median_ms,
                raw_forward_ms=raw_t.median_ms,
                core_peak_bytes=traced_peak_bytes(core_path),
                warm_peak_bytes=traced_peak_bytes(
                    lambda: comp.compress(chunks, wl.question, ratio=ratio)
                ),
                rss_high_water_bytes=rss_high_water_bytes(),
                device=dev,
                gpu_peak_bytes=cold_peak.bytes,
            )
            report.rows.append(row)
            if on_row:
                on_row("row", row)
    ns = [float(r.tokens) for r in report.rows]
    for key, attr in (
        ("core", "core_ms"),
        ("warm_repeat_query", "warm_repeat_query_ms"),
        ("warm_fresh_query", "warm_fresh_query_ms"),
        ("warm_store_only", "warm_store_only_ms"),
        ("cold", "cold_ms"),
        ("raw_forward", "raw_forward_ms"),
    ):
        report.exponents[key] = fit_exponent(ns, [getattr(r, attr) for r in report.rows])
    return report


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

    from semtoken_lab.eval.methods import MethodEnv, build_method

    engine = engine_config(device, encoder_model)
    enc_tok = load_counter(SemTokenConfig(**engine).encoder_model).tokenizer  # workloads as ours
    dev = device or auto_device()
    env = MethodEnv(reader=reader, device=dev, encoder_model=encoder_model)
    order = sorted(methods, key=lambda m: m == "longllmlingua")
    for name in order:
        capped = name == "longllmlingua"
        fn = None
        for row in report.rows:
            if capped and row.target_tokens > lingua_max_tokens:
                continue
            wl = build_workload(enc_tok, docs, row.target_tokens)
            chunks = list(wl.chunks)
            if fn is None:
                fn = build_method(name, env)
                fn(chunks[:1], wl.question, 64)  # load models outside the timings
            budget_reader = int(ratio * sum(env.count(c) for c in chunks))
            out: list[str] = []
            reps = 1 if capped else row.repeats
            t = measure(
                lambda: out.append(fn(chunks, wl.question, budget_reader)),
                reps,
                warmup=0 if capped or row.target_tokens > 4000 else 1,
                device=dev,
            )
            b = BaselineRow(
                method=name,
                target_tokens=row.target_tokens,
                tokens=wl.tokens,
                repeats=len(t.samples_ms),
                ms=t.median_ms,
                achieved_ratio=_ratio_of(env.count, chunks, out[-1]),
                over_cold=t.median_ms / row.cold_ms,
                over_warm_repeat=t.median_ms / row.warm_repeat_query_ms,
                over_warm_fresh=t.median_ms / row.warm_fresh_query_ms,
                note="1 repeat, no warm-up (capped)" if capped else "",
            )
            report.baselines.append(b)
            if on_row:
                on_row("baseline", b)
