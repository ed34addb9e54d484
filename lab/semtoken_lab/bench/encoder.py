"""Fingerprinting throughput over batch sizes and dtypes, against the raw encoder forward.

For one workload (``tokens`` encoder tokens of the benchmark documents) and each (dtype, batch
size):

* **fingerprints** — :meth:`TransformerEncoder.encode_texts`: tokenise, cut windows, move each
  batch to the device, forward, copy the hidden states back, pool tokens to words, normalise;
* **raw forward** — ``model(input_ids, attention_mask)`` alone over exactly the windows
  ``encode_texts`` builds (:meth:`TransformerEncoder.window_batches`), the batches already on
  the device before the clock starts: the floor the fingerprinting path is compared with.

Tokens per second are encoder tokens of the workload (special tokens and window overlap
excluded) over the median time.  On CUDA both are timed with CUDA events after a warm-up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from semtoken_lab.bench.cases import Doc, build_workload
from semtoken_lab.bench.device import engine_config, engine_device, gpu_peak, is_cuda
from semtoken_lab.bench.timing import measure


@dataclass(frozen=True)
class EncoderRow:
    """One (dtype, batch size) of the encoder benchmark (ms are medians)."""

    dtype: str
    batch_size: int
    tokens: int
    windows: int
    repeats: int
    fingerprint_ms: float
    raw_forward_ms: float
    gpu_peak_bytes: int

    @property
    def fingerprint_tokens_per_s(self) -> float:
        return self.tokens / (self.fingerprint_ms / 1e3) if self.fingerprint_ms else 0.0

    @property
    def raw_tokens_per_s(self) -> float:
        return self.tokens / (self.raw_forward_ms / 1e3) if self.raw_forward_ms else 0.0

    @property
    def fingerprint_over_raw(self) -> float:
        """Fingerprinting time / raw forward time (1.10 = 10% over the floor)."""
        return self.fingerprint_ms / self.raw_forward_ms if self.raw_forward_ms else 0.0


def raw_forward(enc: Any, batches: Sequence[tuple[Any, Any]]) -> Callable[[], None]:
    """A closure running ``enc.model`` over ``batches``, moved to the encoder's device first.

    Why moved here and not in the closure: the raw forward is the floor of the fingerprinting
    path, the model's own compute; the host-to-device copies belong to the path it is compared
    with (before this fix CPU batches went to a CUDA model, which cannot run).
    """
    import torch

    dev = enc.device
    on_device = [(i.to(dev), m.to(dev)) for i, m in batches]

    def run() -> None:
        with torch.inference_mode():
            for ids_t, mask_t in on_device:
                enc.model(input_ids=ids_t, attention_mask=mask_t)

    return run


def run_encoder(
    docs: list[Doc],
    *,
    device: str,
    tokens: int = 64000,
    batch_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    dtypes: Sequence[str] = ("float32", "float16", "bfloat16"),
    repeats: int = 3,
    encoder_model: str | None = None,
    on_row: Callable[[str, Any], None] | None = None,
) -> list[EncoderRow]:
    """Run the encoder benchmark (see the module docstring); one model load per dtype."""
    from semtoken_rag import SemTokenConfig
    from semtoken_rag.encoder import TransformerEncoder

    cfg = SemTokenConfig(**engine_config(None, encoder_model))
    rows: list[EncoderRow] = []
    for dtype in dtypes:
        enc = TransformerEncoder(
            cfg.encoder.model,
            window_tokens=cfg.encoder.window_tokens,
            overlap=cfg.encoder.effective_overlap,
            device=engine_device(device),
            dtype=dtype,
        )
        wl = build_workload(enc.tokenizer, docs, tokens)
        chunks = list(wl.chunks)
        for batch_size in batch_sizes:
            enc.batch_size = batch_size
            batches = enc.window_batches(chunks)
            with gpu_peak(device) as peak:
                fp = measure(functools.partial(enc.encode_texts, chunks), repeats, device=device)
            raw = measure(raw_forward(enc, batches), repeats, device=device)
            row = EncoderRow(
                dtype=dtype,
                batch_size=batch_size,
                tokens=wl.tokens,
                windows=int(sum(len(i) for i, _ in batches)),
                repeats=repeats,
                fingerprint_ms=fp.median_ms,
                raw_forward_ms=raw.median_ms,
                gpu_peak_bytes=peak.bytes,
            )
            rows.append(row)
            if on_row:
                on_row("encoder", row)
        if is_cuda(device):
            import torch

            torch.cuda.empty_cache()
    return rows
