"""End to end with the local reader: TTFT and total answer time, full vs compressed context.

For each context size (reader tokens of whole NarrativeQA summaries, the question's own summary
first) the reader answers (greedy, ``max_new_tokens`` tokens) from the full context and from the
compressed context at each ratio.  Compressed times include compression:

* ``cold``: a compressor with no fingerprint store and a new token counter, so the encoder runs
  over the whole context at query time (worst case);
* ``warm``: every chunk's fingerprints already in the compressor's store before the timed call
  (one untimed ``Compressor.fingerprints`` call: what ingestion gives), the normal path: query
  time pays the question's embedding, scoring and selection only (no encoder call for the
  chunks).

speed-up = full time / (compression ms + compressed time), for TTFT and for the whole answer.
Medians over ``repeats`` questions after a warm-up.  Prefill tokens/s are prompt tokens over the
reader's own synchronised prefill clock; the GPU peak is PyTorch's allocator high-water mark on
the reader's device over the whole size (0 on a CPU); ``kernels`` are the attention kernels the
answers report (:mod:`semtoken_lab.reader.attention`: ``sdpa(flash)`` only where the forced
flash kernel ran).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_lab.bench.cases import Doc, build_workload
from semtoken_lab.bench.device import engine_config, gpu_peak


@dataclass(frozen=True)
class EndToEndRow:
    """Medians for one (context size, ratio); times in ms, KV in bytes."""

    context_tokens: int
    ratio: float
    repeats: int
    achieved_ratio: float
    full_prompt_tokens: float
    compressed_prompt_tokens: float
    full_ttft_ms: float
    full_total_ms: float
    compress_cold_ms: float
    compress_warm_ms: float
    compressed_ttft_ms: float
    compressed_total_ms: float
    full_kv_bytes: float
    compressed_kv_bytes: float
    full_prefill_ms: float = 0.0
    compressed_prefill_ms: float = 0.0
    gpu_peak_bytes: int = 0
    kernels: tuple[str, ...] = ()

    @property
    def full_prefill_tokens_per_s(self) -> float:
        return (
            self.full_prompt_tokens / (self.full_prefill_ms / 1e3) if self.full_prefill_ms else 0.0
        )

    @property
    def compressed_prefill_tokens_per_s(self) -> float:
        ms = self.compressed_prefill_ms
        return self.compressed_prompt_tokens / (ms / 1e3) if ms else 0.0

    @property
    def ttft_speedup_cold(self) -> float:
        return self.full_ttft_ms / (self.compress_cold_ms + self.compressed_ttft_ms)

    @property
    def ttft_speedup_warm(self) -> float:
        return self.full_ttft_ms / (self.compress_warm_ms + self.compressed_ttft_ms)

    @property
    def total_speedup_cold(self) -> float:
        return self.full_total_ms / (self.compress_cold_ms + self.compressed_total_ms)

    @property
    def total_speedup_warm(self) -> float:
        return self.full_total_ms / (self.compress_warm_ms + self.compressed_total_ms)


def _timed_answer(reader: Any, question: str, context: str, max_new: int) -> tuple[Any, float]:
    t = time.perf_counter()
    ans = reader.answer(question, context, max_new_tokens=max_new)
    return ans, (time.perf_counter() - t) * 1e3


def run_endtoend(
    docs: list[Doc],
    sizes: Sequence[int] = (1000, 2000, 4000, 8000),
    ratios: Sequence[float] = (0.5, 0.25),
    repeats: int = 2,
    *,
    reader_name: str = "smollm2",
    max_new_tokens: int = 16,
    on_row: Callable[[EndToEndRow, dict[str, Any]], None] | None = None,
    device: str | None = None,
    encoder_model: str | None = None,
    attn: str = "auto",
) -> tuple[list[EndToEndRow], dict[str, Any]]:
    """Run the end-to-end benchmark (see the module docstring).

    Args:
        device: Reader and encoder device (``None``: each one's ``auto``).
        encoder_model: Encoder id or folder (default: the engine's).
        attn: The reader's ``attn`` (:class:`~semtoken_lab.reader.LocalReader`).

    Returns:
        ``(rows, reader_info)``.
    """
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder

    from semtoken_lab.reader import LocalReader

    reader = LocalReader(reader_name, device=device or "auto", attn=attn)
    reader.warmup()
    info = _reader_info(reader, reader_name, max_new_tokens, repeats)
    engine = engine_config(device, encoder_model)
    encoder = TransformerEncoder.from_config(SemTokenConfig(**engine))
    info["encoder_device"] = str(encoder.device)
    info["encoder_dtype"] = str(encoder.torch_dtype).replace("torch.", "")
    comps = _Compressors(engine, encoder, reader.tokenizer, reader_name, ratios)
    for r in ratios:  # warm-up every path outside the timings
        comps.cold(r).compress(docs[0].context, docs[0].question)
        comps.warm[r].compress(docs[0].context, docs[0].question)
    reader.answer(docs[0].question, docs[0].context[:2000], max_new_tokens=max_new_tokens)

    rows: list[EndToEndRow] = []
    for size in sizes:
        with gpu_peak(str(reader.device)) as peak:
            samples, kernels = _sample_size(reader, comps, docs, size, repeats, max_new_tokens)
        med = {k: statistics.median(v) for k, v in samples.items()}
        for r in ratios:
            row = _row(size, r, repeats, med, peak.bytes, tuple(sorted(kernels)))
            rows.append(row)
            if on_row:
                on_row(row, info)
    return rows, info


def _reader_info(reader: Any, name: str, max_new_tokens: int, repeats: int) -> dict[str, Any]:
    """The reader's side of the report (after its warm-up: the attention timings are known)."""
    from semtoken_lab.bench.synthetic import random_weights_info

    return {
        "reader": name,
        "device": reader.device,
        "dtype": str(reader.dtype),
        "attn": reader.attn_implementation,
        "attn_timings_ms": reader.attention_timings,
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
        "weights": random_weights_info(name) or "real",
    }


class _Compressors:
    """Per ratio, a new cold compressor per call and one warm compressor, all on one encoder.

    Cold ones get a new token counter each (nothing memoised); the warm ones share one.
    """

    def __init__(
        self,
        engine: dict[str, Any],
        encoder: Any,
        tokenizer: Any,
        reader_name: str,
        ratios: Sequence[float],
    ) -> None:
        from semtoken_rag import Compressor, SemTokenConfig
        from semtoken_rag.tokens import TokenCounter

        self.engine = engine
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.reader_name = reader_name
        self.ratios = tuple(ratios)
        shared_counter = TokenCounter(tokenizer, name=reader_name)
        self.warm = {
            r: Compressor(
                SemTokenConfig(compression_ratio=r, **engine),
                encoder=encoder,
                counter=shared_counter,
            )
            for r in ratios
        }

    def cold(self, r: float) -> Any:
        """A compressor with no fingerprint store and a new token counter."""
        from semtoken_rag import Compressor, SemTokenConfig
        from semtoken_rag.tokens import TokenCounter

        cfg = SemTokenConfig(compression_ratio=r, cache_embeddings=False, **self.engine)
        counter = TokenCounter(self.tokenizer, name=self.reader_name)
        return Compressor(cfg, encoder=self.encoder, counter=counter)


def _sample_size(
    reader: Any, comps: _Compressors, docs: list[Doc], size: int, repeats: int, max_new: int
) -> tuple[dict[str, list[float]], set[str]]:
    """Every repeat at one context size: the samples by key (``full_*`` and ``{ratio}_*``)
    and the attention kernels the answers report."""
    samples: dict[str, list[float]] = {}
    kernels: set[str] = set()
    for rep in range(repeats):
        # a different question (and neighbours) per repeat
        start = 1 + 7 * rep + size // 512
        wl = build_workload(reader.tokenizer, docs, size, start=start)
        chunks, q = list(wl.chunks), wl.question
        full, full_ms = _timed_answer(reader, q, wl.text, max_new)
        kernels.add(full.attn_implementation)
        _add_answer(samples, "full", full, full_ms)
        for r in comps.ratios:
            t = time.perf_counter()
            res = comps.cold(r).compress(chunks, q)
            _add(samples, f"{r}_cold", (time.perf_counter() - t) * 1e3)
            comps.warm[r].fingerprints(chunks)  # stored ahead, as ingestion would
            t = time.perf_counter()
            res_w = comps.warm[r].compress(chunks, q)
            _add(samples, f"{r}_warm", (time.perf_counter() - t) * 1e3)
            ans, ans_ms = _timed_answer(reader, q, res_w.joined(), max_new)
            kernels.add(ans.attn_implementation)
            _add_answer(samples, str(r), ans, ans_ms)
            _add(samples, f"{r}_ratio", res.ratio)
    return samples, kernels


def _add(samples: dict[str, list[float]], key: str, value: float) -> None:
    samples.setdefault(key, []).append(float(value))


def _add_answer(samples: dict[str, list[float]], prefix: str, ans: Any, total_ms: float) -> None:
    """One answer's prefill, TTFT, total time, prompt tokens and KV bytes."""
    _add(samples, f"{prefix}_prefill", ans.prefill_ms)
    _add(samples, f"{prefix}_ttft", ans.ttft_ms)
    _add(samples, f"{prefix}_total", total_ms)
    _add(samples, f"{prefix}_prompt", ans.prompt_tokens)
    _add(samples, f"{prefix}_kv", ans.kv_bytes)


def _row(
    size: int,
    r: float,
    repeats: int,
    med: dict[str, float],
    peak_bytes: int,
    kernels: tuple[str, ...],
) -> EndToEndRow:
    """The row of ratio ``r`` from the medians of one context size."""
    return EndToEndRow(
        context_tokens=size,
        ratio=r,
        repeats=repeats,
        achieved_ratio=med[f"{r}_ratio"],
        full_prompt_tokens=med["full_prompt"],
        compressed_prompt_tokens=med[f"{r}_prompt"],
        full_ttft_ms=med["full_ttft"],
        full_total_ms=med["full_total"],
        compress_cold_ms=med[f"{r}_cold"],
        compress_warm_ms=med[f"{r}_warm"],
        compressed_ttft_ms=med[f"{r}_ttft"],
        compressed_total_ms=med[f"{r}_total"],
        full_kv_bytes=med["full_kv"],
        compressed_kv_bytes=med[f"{r}_kv"],
        full_prefill_ms=med["full_prefill"],
        compressed_prefill_ms=med[f"{r}_prefill"],
        gpu_peak_bytes=peak_bytes,
        kernels=kernels,
    )
