"""End to end with the local reader: TTFT and total answer time, full vs compressed context.

For each context size (reader tokens of whole NarrativeQA summaries, the question's own summary
first) the reader answers (greedy, ``max_new_tokens`` tokens) from the full context and from the
compressed context at each ratio.  Compressed times include compression:

* ``cold``: a compressor with no fingerprint store and a new token counter, so the encoder runs
  over the whole context at query time (worst case);
* ``warm``: fingerprints precomputed at ingestion (``Compressor.precompute``), the normal path:
  query time pays the question's embedding, scoring and selection only.

speed-up = full time / (compression ms + compressed time), for TTFT and for the whole answer.
Medians over ``repeats`` questions after a warm-up.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_lab.bench.cases import Doc, build_workload


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
) -> tuple[list[EndToEndRow], dict[str, Any]]:
    """Run the end-to-end benchmark (see the module docstring).

    Returns:
        ``(rows, reader_info)``.
    """
    from semtoken_rag import Compressor, SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder
    from semtoken_rag.tokens import TokenCounter

    from semtoken_lab.reader import LocalReader

    reader = LocalReader(reader_name)
    reader.warmup()
    tok = reader.tokenizer
    info = {
        "reader": reader_name,
        "device": reader.device,
        "dtype": str(reader.dtype),
        "attn": reader.attn_implementation,
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
    }
    encoder = TransformerEncoder.from_config(SemTokenConfig())
    shared_counter = TokenCounter(tok, name=reader_name)

    def cold_comp(r: float) -> Any:
        cfg = SemTokenConfig(compression_ratio=r, cache_embeddings=False)
        return Compressor(cfg, encoder=encoder, counter=TokenCounter(tok, name=reader_name))

    warm = {
        r: Compressor(SemTokenConfig(compression_ratio=r), encoder=encoder, counter=shared_counter)
        for r in ratios
    }
    for r in ratios:  # warm-up every path outside the timings
        cold_comp(r).compress(docs[0].context, docs[0].question)
        warm[r].compress(docs[0].context, docs[0].question)
    reader.answer(docs[0].question, docs[0].context[:2000], max_new_tokens=max_new_tokens)

    rows: list[EndToEndRow] = []
    for size in sizes:
        samples: dict[str, list[float]] = {}

        def add(key: str, value: float, samples: dict[str, list[float]] = samples) -> None:
            samples.setdefault(key, []).append(float(value))

        for rep in range(repeats):
            start = 1 + 7 * rep + size // 512  # a different question (and neighbours) per repeat
            wl = build_workload(tok, docs, size, start=start)
            chunks, q = list(wl.chunks), wl.question
            full, full_ms = _timed_answer(reader, q, wl.text, max_new_tokens)
            add("full_ttft", full.ttft_ms)
            add("full_total", full_ms)
            add("full_prompt", full.prompt_tokens)
            add("full_kv", full.kv_bytes)
            for r in ratios:
                comp = cold_comp(r)
                t = time.perf_counter()
                res = comp.compress(chunks, q)
                add(f"{r}_cold", (time.perf_counter() - t) * 1e3)
                warm[r].precompute(chunks)
                t = time.perf_counter()
                res_w = warm[r].compress(chunks, q)
                add(f"{r}_warm", (time.perf_counter() - t) * 1e3)
                ans, ans_ms = _timed_answer(reader, q, res_w.joined(), max_new_tokens)
                add(f"{r}_ttft", ans.ttft_ms)
                add(f"{r}_total", ans_ms)
                add(f"{r}_prompt", ans.prompt_tokens)
                add(f"{r}_kv", ans.kv_bytes)
                add(f"{r}_ratio", res.ratio)
        med = {k: statistics.median(v) for k, v in samples.items()}
        for r in ratios:
            row = EndToEndRow(
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
            )
            rows.append(row)
            if on_row:
                on_row(row, info)
    return rows, info
